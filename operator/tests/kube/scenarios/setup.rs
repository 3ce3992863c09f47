//! Apply the generated CRDs; run the operator as the ServiceAccount of operator/rbac.yaml.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::ResourceExt;

use crate::operator::OperatorProcess;
use crate::support::{apply_file, eventually, namespace, WAIT};
use crate::{service_account_token, Env};

/// The CRDs as the code generates them apply cleanly (structural schemas) and become
/// Established; kinds, short names and categories are served.
pub fn crds(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let api: Api<CustomResourceDefinition> = Api::all(env.client.clone());
        for crd in taxiway_operator::crd::definitions() {
            let name = crd.name_any();
            api.patch(
                &name,
                &PatchParams::apply("taxiway-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .with_context(|| format!("applying CRD {name}"))?;
            eventually(&format!("CRD {name} Established"), WAIT, || async {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                ensure!(established, "not Established yet");
                Ok(())
            })
            .await?;
        }
        let discovery = Discovery::new(env.client.clone())
            .filter(&["taxiway.dev"])
            .run()
            .await?;
        let group = discovery
            .get("taxiway.dev")
            .context("group taxiway.dev not served")?;
        let kinds: Vec<String> = group
            .recommended_resources()
            .iter()
            .map(|(r, _)| r.kind.clone())
            .collect();
        ensure!(
            kinds.contains(&"TaxiiService".into()) && kinds.contains(&"TaxiiCollection".into()),
            "{kinds:?}"
        );
        let crd = api.get("taxiiservices.taxiway.dev").await?;
        let short = crd.spec.names.short_names.unwrap_or_default();
        ensure!(
            short.contains(&"taxii".to_string()),
            "short names {short:?}"
        );
        Ok(())
    })
}

/// The operator runs as the ServiceAccount operator/rbac.yaml defines, with exactly
/// those rules: every later scenario would fail on a missing permission.
pub fn operator(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        namespace(&env.client, "taxiway-system").await?;
        apply_file(&env.client, &env.repo.join("operator/rbac.yaml")).await?;
        let token =
            service_account_token(&env.client, "taxiway-system", "taxiway-operator").await?;
        env.cluster
            .kubeconfig_for_token(&env.operator_kubeconfig, &token)?;
        let op = OperatorProcess::start(&env.operator_kubeconfig, &env.dir, "op-1").await?;
        eventually("the operator to lead", Duration::from_secs(10), || async {
            ensure!(
                op.metric("taxiway_operator_leader").await? == 1.0,
                "not leading"
            );
            Ok(())
        })
        .await?;
        *env.operator.lock().await = Some(op);
        Ok(())
    })
}
