//! `spec.collectionsFrom`: an XSOAR collections JSON in a ConfigMap becomes query
//! collections with stable ids; an edit of the ConfigMap changes the rendered
//! configuration (the server reloads it without a restart); a broken JSON keeps what
//! it defined before; an unsupported XSOAR field is named on status.

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use taxiway_operator::crd::{CollectionsFromStatus, TaxiiService};

use crate::support::{apply, expect_condition, namespace, taxii_collection, taxii_service, Ns};
use crate::Env;

const NS: &str = "xsoar";

fn config_map(json: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "xsoar", "namespace": NS},
        "data": {"collections.json": json}
    })
}

const FIRST: &str = r#"{
  "Malicious IPs": {"query": "type:IP and verdict:Malicious", "description": "Block list"},
  "APT29": "tags:apt29 -type:File"
}"#;

const SECOND: &str = r#"{
  "Malicious IPs": {"query": "type:IP and verdict:Malicious", "description": "Block list"},
  "Phishing URLs": "type:URL and tags:phishing",
  "Cases": "investigationIDs:42"
}"#;

fn status(service: &TaxiiService) -> Option<CollectionsFromStatus> {
    service.status.clone().and_then(|s| s.collections_from)
}

/// See the module docs.
pub fn collections_from(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(client, config_map(FIRST)).await?;
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Migrated from XSOAR",
                    "apiRoots": [{"path": "feeds", "title": "Feeds"}],
                    "replicas": 0,
                    "collectionsFrom": {"configMapName": "xsoar"},
                }),
            ),
        )
        .await?;
        apply(
            client,
            taxii_collection(
                NS,
                "inbox",
                json!({"service": "feeds", "writable": true, "access": {"write": ["producer"]}}),
            ),
        )
        .await?;
        let served = ns
            .service_status_where("feeds", "collectionsFrom serves 2", |s| {
                let from = status(s).context("no status.collectionsFrom")?;
                ensure!(from.served == 2, "{from:?}");
                Ok(())
            })
            .await?;
        let from = status(&served).context("status.collectionsFrom")?;
        let ips = from
            .collections
            .iter()
            .find(|c| c.name == "Malicious IPs")
            .context("Malicious IPs")?;
        let expected_id = taxiway_model::config::xsoar::collection_id("feeds", "Malicious IPs");
        ensure!(
            ips.id == expected_id,
            "id {} is not the derived {expected_id}",
            ips.id
        );
        let native = taxiway_model::query::xsoar::translate("type:IP and verdict:Malicious")?;
        ensure!(ips.query.as_deref() == Some(native.as_str()), "{ips:?}");
        let config = ns.config_text("feeds").await?;
        ensure!(config.contains(&expected_id), "{config}");
        ensure!(config.contains("title = \"APT29\""), "{config}");

        // An edit of the ConfigMap reaches the rendered configuration: one added, one
        // removed, an unsupported field named and left out.
        apply(client, config_map(SECOND)).await?;
        let edited = ns
            .service_status_where("feeds", "collectionsFrom follows the edit", |s| {
                let from = status(s).context("no status.collectionsFrom")?;
                ensure!(from.served == 2 && from.collections.len() == 3, "{from:?}");
                expect_condition(
                    &s.status.clone().unwrap_or_default().conditions,
                    "Degraded",
                    "True",
                    "RejectedCollections",
                )
            })
            .await?;
        let from = status(&edited).context("status.collectionsFrom")?;
        let cases = from
            .collections
            .iter()
            .find(|c| c.name == "Cases")
            .context("Cases")?;
        let message = cases.message.clone().unwrap_or_default();
        ensure!(message.contains("investigationIDs"), "{message}");
        let config = ns.config_text("feeds").await?;
        ensure!(config.contains("title = \"Phishing URLs\""), "{config}");
        ensure!(!config.contains("title = \"APT29\""), "{config}");
        ensure!(config.contains(&expected_id), "ids are stable across edits");

        // A broken JSON: said on status, and what it defined keeps being served.
        apply(client, config_map("{\"Malicious IPs\": ")).await?;
        ns.service_status_where("feeds", "InvalidCollectionsFrom", |s| {
            let from = status(s).context("no status.collectionsFrom")?;
            ensure!(from.error.is_some(), "{from:?}");
            expect_condition(
                &s.status.clone().unwrap_or_default().conditions,
                "Degraded",
                "True",
                "InvalidCollectionsFrom",
            )
        })
        .await?;
        let config = ns.config_text("feeds").await?;
        ensure!(config.contains("title = \"Phishing URLs\""), "{config}");
        ensure!(config.contains(&expected_id), "{config}");
        Ok(())
    })
}
