//! The scenarios, in the order they run, and what they share.

mod availability;
mod data_path;
mod examples;
mod feeds;
mod gateway;
mod lifecycle;
mod monitoring;
mod placement;
mod render;
mod restored;
mod setup;
mod trust;
mod user_selector;
mod users;
mod xsoar;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Result};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::Env;

/// The one image prefix the test operator allows besides its `--server-image`.
pub const ALLOWED_IMAGE_PREFIX: &str = "registry.example/taxiway/";

/// One scenario.
pub type Scenario = for<'a> fn(&'a Env) -> BoxFuture<'a, Result<()>>;

/// Every scenario, in order. Names starting with `setup` always run.
pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("setup: CRDs are Established", setup::crds),
        (
            "setup: operator runs as its least-privilege ServiceAccount",
            setup::operator,
        ),
        (
            "render: a service with users, TLS and an Ingress",
            render::everything,
        ),
        (
            "render: a collection change changes only the ConfigMap",
            render::collection_change,
        ),
        (
            "render: a broken query is reported, not served",
            render::broken_query,
        ),
        (
            "render: a deleted collection leaves the config",
            render::deleted_collection,
        ),
        (
            "render: removing the Ingress deletes it",
            render::ingress_removed,
        ),
        (
            "users: broken Secrets are reported, hashes are stable",
            users::secrets,
        ),
        (
            "users: spec.userSelector adds, locks and removes users from labelled Secrets",
            user_selector::labelled_secrets,
        ),
        (
            "trust: a planted credentials Secret is not read, absurd hashes are not run",
            trust::planted_credentials,
        ),
        (
            "trust: an image outside --allowed-image-prefixes is rejected",
            trust::image_allow_list,
        ),
        (
            "trust: spec.networkPolicy is rendered, repaired and removed; Ingress warning",
            trust::network_policy,
        ),
        (
            "lifecycle: a collection waits for its service",
            lifecycle::orphan_collection,
        ),
        (
            "lifecycle: replicas the store cannot serve",
            lifecycle::replicas,
        ),
        (
            "lifecycle: several replicas on PostgreSQL",
            lifecycle::postgres_replicas,
        ),
        (
            "gateway: spec.gateway renders an HTTPRoute once the Gateway API is served",
            gateway::http_route,
        ),
        (
            "monitoring: spec.monitoring renders a PodMonitor and a PrometheusRule once served",
            monitoring::pod_monitor_and_rules,
        ),
        (
            "placement: pod placement and identity reach the pods",
            placement::settings_reach_the_pods,
        ),
        (
            "placement: the scale subresource scales the Deployment",
            placement::scale_subresource,
        ),
        (
            "lifecycle: a PodDisruptionBudget deleted or edited by hand is restored at once",
            lifecycle::disruption_budget_restored,
        ),
        (
            "restored: an HTTPRoute, PodMonitor or PrometheusRule deleted by hand comes back at once",
            restored::optional_objects_restored,
        ),
        (
            "lifecycle: embedded to PostgreSQL: the warning and the documented migration Job",
            lifecycle::embedded_to_postgres,
        ),
        (
            "xsoar: spec.collectionsFrom serves an XSOAR collections JSON and follows its edits",
            xsoar::collections_from,
        ),
        (
            "feeds: a TaxiiFeed is rendered with its Secrets, waits for them, and goes",
            feeds::rendered_with_their_secrets,
        ),
        (
            "lifecycle: an unreadable object does not stop the others",
            lifecycle::malformed,
        ),
        (
            "data path: the real server serves what the operator rendered",
            data_path::taxii2_client,
        ),
        (
            "examples: examples/k8s is accepted as documented",
            examples::accepted,
        ),
        (
            "availability: a restarted operator writes nothing",
            availability::restart_writes_nothing,
        ),
        (
            "availability: a standby takes over the Lease",
            availability::leader_failover,
        ),
        (
            "lifecycle: deleting a service garbage-collects its objects",
            lifecycle::garbage_collection,
        ),
    ]
}

/// A test CA and a server certificate it signs for `localhost`/`127.0.0.1`, made once
/// with openssl: (CA file, certificate PEM, key PEM).
pub fn certificate(env: &Env) -> Result<(PathBuf, String, String)> {
    let dir = env.dir.join("tls");
    let (ca, crt, key) = (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
    if !crt.exists() {
        std::fs::create_dir_all(&dir)?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(&dir, |c| {
            c.args(["req", "-x509"])
                .args(ec)
                .args(["-days", "2", "-subj", "/CN=Taxiway test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .args(["-keyout", "ca.key", "-out", "ca.crt"])
        })?;
        openssl(&dir, |c| {
            c.arg("req").args(ec).args([
                "-subj",
                "/CN=localhost",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ])
        })?;
        std::fs::write(
            dir.join("tls.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )?;
        openssl(&dir, |c| {
            c.args([
                "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            ])
            .args([
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "tls.ext",
                "-out",
                "tls.crt",
            ])
        })?;
    }
    Ok((
        ca,
        std::fs::read_to_string(&crt)?,
        std::fs::read_to_string(&key)?,
    ))
}

fn openssl(dir: &std::path::Path, args: impl FnOnce(&mut Command) -> &mut Command) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir);
    let out = args(&mut cmd).output()?;
    ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A `kubernetes.io/tls` Secret with the test certificate.
pub fn tls_secret(env: &Env, namespace: &str, name: &str) -> Result<Value> {
    let (_, crt, key) = certificate(env)?;
    Ok(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": crt, "tls.key": key},
    }))
}
