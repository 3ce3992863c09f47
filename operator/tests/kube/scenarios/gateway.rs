//! `spec.gateway`: a Gateway API `HTTPRoute`, reported while the cluster lacks the
//! CRDs, rendered once they exist, removed when switched off.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::core::{DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::support::{
    apply, apply_file, eventually, expect_condition, namespace, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "gateway";
/// The operator looks for a missing API again within 30 seconds.
const DISCOVERY_WAIT: Duration = Duration::from_secs(90);

fn spec(with_gateway: bool) -> serde_json::Value {
    let mut spec = json!({
        "title": "Routed",
        "apiRoots": [{"path": "api", "title": "API"}],
        "trustedProxies": ["10.0.0.0/8"],
    });
    if with_gateway {
        spec["gateway"] = json!({
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["taxii.example.com"],
            "path": "/intel"
        });
    }
    spec
}

/// Without the Gateway API the status says why; with the CRD applied the HTTPRoute is
/// rendered as documented (and discovery's URLs follow it); without `spec.gateway`
/// the route is deleted.
pub fn http_route(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        ensure!(
            crds.get_opt("httproutes.gateway.networking.k8s.io")
                .await?
                .is_none(),
            "this scenario starts without the Gateway API"
        );
        apply(client, taxii_service(NS, "routed", spec(true))).await?;
        let s = ns
            .service_status_where("routed", "GatewayAPIUnavailable", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "GatewayAPIUnavailable")
            })
            .await?;
        let problems = s.status.unwrap_or_default().problems;
        ensure!(
            problems.iter().any(|p| p.contains("Gateway API CRDs")),
            "{problems:?}"
        );

        apply_file(
            client,
            &env.repo
                .join("operator/tests/kube/fixtures/gateway-api-httproute-crd.yaml"),
        )
        .await?;
        let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        let resource = eventually("HTTPRoute served", WAIT, || async {
            Ok(kube::discovery::pinned_kind(client, &gvk).await?.0)
        })
        .await?;
        let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
        let route = eventually("the HTTPRoute", DISCOVERY_WAIT, || async {
            routes.get_opt("routed").await?.context("no HTTPRoute yet")
        })
        .await?;
        ensure!(
            route.data["spec"]
                == json!({
                    "parentRefs": [{
                        "group": "gateway.networking.k8s.io", "kind": "Gateway",
                        "name": "public", "namespace": "gateways", "sectionName": "https"
                    }],
                    "hostnames": ["taxii.example.com"],
                    "rules": [{
                        "matches": [{"path": {"type": "PathPrefix", "value": "/intel"}}],
                        "backendRefs": [{"kind": "Service", "name": "routed", "port": 80}]
                    }]
                }),
            "{}",
            route.data["spec"]
        );
        let owners = route.metadata.owner_references.clone().unwrap_or_default();
        ensure!(owners.len() == 1 && owners[0].kind == "TaxiiService");
        let s = ns
            .service_status_where("routed", "Degraded=False", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
            })
            .await?;
        let endpoints = s.status.unwrap_or_default().endpoints.unwrap_or_default();
        ensure!(
            endpoints.discovery == "https://taxii.example.com/intel/taxii2/",
            "{endpoints:?}"
        );
        let config = ns.config_text("routed").await?;
        ensure!(
            config.contains("https://taxii.example.com/intel"),
            "{config}"
        );

        apply(client, taxii_service(NS, "routed", spec(false))).await?;
        eventually("the HTTPRoute deleted", WAIT, || async {
            ensure!(routes.get_opt("routed").await?.is_none(), "still there");
            Ok(())
        })
        .await?;
        Ok(())
    })
}
