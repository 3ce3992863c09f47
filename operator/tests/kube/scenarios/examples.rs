//! examples/k8s: every file but cert-manager's Certificate, applied as a user would.

use anyhow::{ensure, Result};
use futures::future::BoxFuture;

use super::tls_secret;
use crate::support::{apply, apply_file, expect_condition, Ns};
use crate::Env;

/// The example service renders with all its collections and users and no problem.
pub fn accepted(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let dir = env.repo.join("examples/k8s");
        for file in [
            "namespace.yaml",
            "users.yaml",
            "taxiiservice.yaml",
            "collections.yaml",
        ] {
            apply_file(&env.client, &dir.join(file)).await?;
        }
        // What certificate.yaml would make with cert-manager.
        apply(&env.client, tls_secret(env, "threat-intel", "taxii-tls")?).await?;
        let ns = Ns {
            client: env.client.clone(),
            name: "threat-intel".into(),
        };
        ns.service_status_where("taxii", "the example service", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")?;
            ensure!(st.collections == 4, "{} collections", st.collections);
            ensure!(st.users == 3, "{} users", st.users);
            Ok(())
        })
        .await?;
        for name in [
            "inbox",
            "high-confidence-ipv4",
            "shareable-30d",
            "malware-context",
        ] {
            ns.collection_status_where(name, "an accepted collection", |c| {
                let st = c.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Accepted", "True", "Accepted")
            })
            .await?;
        }
        Ok(())
    })
}
