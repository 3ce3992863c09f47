//! The scenarios, in the order they run, and what they share.

mod availability;
mod data_path;
mod lifecycle;
mod render;
mod setup;
mod users;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Result};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::Env;

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
            "lifecycle: a collection waits for its service",
            lifecycle::orphan_collection,
        ),
        (
            "lifecycle: replicas the store cannot serve",
            lifecycle::replicas,
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

/// A self-signed certificate for `localhost`/`127.0.0.1`, made once with openssl.
pub fn certificate(env: &Env) -> Result<(PathBuf, String, String)> {
    let dir = env.dir.join("tls");
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    if !crt.exists() {
        std::fs::create_dir_all(&dir)?;
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()?;
        ensure!(
            status.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    Ok((
        crt.clone(),
        std::fs::read_to_string(&crt)?,
        std::fs::read_to_string(&key)?,
    ))
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
