//! Running as a service: restarts write nothing; a standby takes over the Lease.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use crate::operator::{OperatorProcess, LEASE_SECONDS};
use crate::support::{apply, changed, eventually, http_get, taxii_collection, Ns, WAIT};
use crate::Env;

/// Services whose objects must not move when the operator restarts.
const WATCHED: [(&str, &str); 4] = [
    ("render", "feeds"),
    ("users", "feeds"),
    ("user-selector", "feeds"),
    ("datapath", "feeds"),
];

/// A new operator process reconciles every object again and writes nothing: no
/// resourceVersion moves (credentials keep their salted hashes, statuses their
/// transition times), and its write counter stays at zero.
pub fn restart_writes_nothing(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let mut before = vec![];
        for (namespace, service) in WATCHED {
            let ns = Ns {
                client: env.client.clone(),
                name: namespace.into(),
            };
            before.push(ns.settled_versions(service).await?);
        }
        let mut guard = env.operator.lock().await;
        if let Some(mut old) = guard.take() {
            old.terminate();
        }
        let op = OperatorProcess::start(&env.operator_kubeconfig, &env.dir, "op-2").await?;
        // Every service reconciled at least once by the new process.
        let services = 0.0 + WATCHED.len() as f64;
        eventually(
            "the new operator to reconcile every service",
            WAIT,
            || async {
                let n = op
                    .metric("taxiway_operator_reconciles_total{controller=\"taxiiservice\"}")
                    .await?;
                ensure!(n >= services, "{n} reconciles");
                Ok(())
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for ((namespace, service), before) in WATCHED.iter().zip(&before) {
            let ns = Ns {
                client: env.client.clone(),
                name: namespace.to_string(),
            };
            let after = ns.versions(service).await?;
            let diff = changed(before, &after);
            ensure!(diff.is_empty(), "{namespace}: a restart changed {diff:?}");
        }
        let writes = op.metric_sum("taxiway_operator_writes_total").await?;
        ensure!(
            writes == 0.0,
            "the restarted operator wrote {writes} times:\n{}",
            op.metrics().await?
        );
        *guard = Some(op);
        Ok(())
    })
}

/// Two replicas: the second stands by (ready, not leading) until the leader dies
/// without releasing the Lease; then it takes over and reconciles.
pub fn leader_failover(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), "taxiway-system");
        let holder = || async {
            let lease = leases.get("taxiway-operator").await?;
            lease
                .spec
                .and_then(|s| s.holder_identity)
                .context("no holder")
        };
        let mut guard = env.operator.lock().await;
        let leader = guard.as_mut().context("no running operator")?;
        ensure!(
            holder()
                .await?
                .starts_with(&format!("{}_", leader.identity)),
            "{} does not hold the Lease",
            leader.identity
        );

        let standby = OperatorProcess::start(&env.operator_kubeconfig, &env.dir, "op-3").await?;
        let (status, body) = http_get(&standby.admin, "/readyz").await?;
        ensure!(
            status == 200 && body.contains("standby"),
            "standby /readyz: {status} {body}"
        );
        ensure!(standby.metric("taxiway_operator_leader").await? == 0.0);
        tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
        ensure!(
            holder()
                .await?
                .starts_with(&format!("{}_", leader.identity)),
            "the standby took a live Lease"
        );
        ensure!(
            standby
                .metric("taxiway_operator_reconciles_total{controller=\"taxiiservice\"}")
                .await?
                == 0.0
        );

        // The leader dies without releasing the Lease.
        leader.stop();
        eventually(
            "the standby to take over",
            Duration::from_secs(LEASE_SECONDS * 4),
            || async {
                ensure!(
                    holder().await?.starts_with("op-3_"),
                    "holder {}",
                    holder().await?
                );
                ensure!(
                    standby.metric("taxiway_operator_leader").await? == 1.0,
                    "not leading yet"
                );
                Ok(())
            },
        )
        .await?;
        apply(
            &env.client,
            taxii_collection(
                "datapath",
                "after-failover",
                json!({"service": "feeds", "writable": true}),
            ),
        )
        .await?;
        let ns = Ns {
            client: env.client.clone(),
            name: "datapath".into(),
        };
        let id = ns
            .collection_status_where("after-failover", "Accepted by the new leader", |c| {
                let st = c.status.clone().unwrap_or_default();
                crate::support::expect_condition(&st.conditions, "Accepted", "True", "Accepted")
            })
            .await?
            .status
            .and_then(|s| s.id)
            .context("id")?;
        ensure!(ns.config_text("feeds").await?.contains(&id));
        *guard = Some(standby);
        Ok(())
    })
}
