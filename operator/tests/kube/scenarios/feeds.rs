//! `TaxiiFeed`: rendered into the server's `[[feeds]]` with its Secrets copied into the
//! generated feeds Secret (never into the ConfigMap), without touching the Deployment;
//! a feed whose Secret is missing waits with `SecretNotFound` and runs once the Secret
//! is created; the TaxiiFeed's status says whether it runs and, with no server pod
//! here, that the server cannot be asked; a deleted feed leaves the configuration.

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{json, Value};
use taxiway_operator::crd::TaxiiFeed;

use crate::support::{
    apply, basic_auth, delete, eventually, expect_condition, namespace, taxii_collection,
    taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "feeds";
const PASSWORD: &str = "upstream-password-7f3a";

fn taxii_feed(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiFeed",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// A feed's status once it describes the feed's generation and `check` holds.
async fn feed_status_where(
    ns: &Ns,
    name: &str,
    what: &str,
    check: impl Fn(&TaxiiFeed) -> Result<()>,
) -> Result<TaxiiFeed> {
    let api: Api<TaxiiFeed> = Api::namespaced(ns.client.clone(), NS);
    eventually(what, WAIT, || async {
        let feed = api.get(name).await?;
        let status = feed.status.clone().unwrap_or_default();
        ensure!(
            status.observed_generation == feed.metadata.generation,
            "status describes generation {:?}, object is at {:?}",
            status.observed_generation,
            feed.metadata.generation
        );
        check(&feed)?;
        Ok(feed)
    })
    .await
}

fn conditions(feed: &TaxiiFeed) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    feed.status.clone().unwrap_or_default().conditions
}

/// See the module docs.
pub fn rendered_with_their_secrets(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(
            client,
            taxii_service(
                NS,
                "hub",
                json!({"title": "Hub", "apiRoots": [{"path": "hub", "title": "Hub"}], "replicas": 0}),
            ),
        )
        .await?;
        apply(
            client,
            taxii_collection(
                NS,
                "inbox",
                json!({"service": "hub", "writable": true, "access": {"write": ["producer"]}}),
            ),
        )
        .await?;
        apply(
            client,
            taxii_collection(
                NS,
                "indicators",
                json!({"service": "hub", "query": "type:indicator"}),
            ),
        )
        .await?;
        let inbox_id = ns
            .collection_status_where("inbox", "inbox accepted", |c| {
                expect_condition(
                    &c.status.clone().unwrap_or_default().conditions,
                    "Accepted",
                    "True",
                    "Accepted",
                )
            })
            .await?
            .status
            .and_then(|s| s.id)
            .context("inbox has an id")?;
        let deployment_before = Api::<Deployment>::namespaced(client.clone(), NS)
            .get("hub")
            .await?
            .spec
            .and_then(|s| s.template.spec);

        // A TAXII feed whose login Secret does not exist yet: it waits.
        apply(
            client,
            taxii_feed(
                "partner",
                json!({
                    "service": "hub", "into": "inbox",
                    "url": "https://partner.example/taxii2/", "collection": "Partner indicators",
                    "interval": "5m", "credentials": {"secretName": "partner-login"},
                }),
            ),
        )
        .await?;
        feed_status_where(&ns, "partner", "partner waits for its Secret", |f| {
            expect_condition(&conditions(f), "Accepted", "False", "SecretNotFound")?;
            expect_condition(&conditions(f), "Ready", "False", "SecretNotFound")
        })
        .await?;
        ns.service_status_where("hub", "hub reports the feed not run", |s| {
            let status = s.status.clone().unwrap_or_default();
            let admission = status
                .feeds
                .iter()
                .find(|f| f.name == "partner")
                .context("status.feeds lists partner")?;
            ensure!(!admission.accepted, "{admission:?}");
            expect_condition(&status.conditions, "Degraded", "True", "RejectedFeeds")
        })
        .await?;

        // Created without the opt-in label it is refused (a TaxiiFeed's author picks
        // the URL its credentials go to); labelled, the change is heard (a watch, not
        // the next resync); granted write by its collection, the feed runs.
        apply(
            client,
            basic_auth(NS, "partner-login", "hub", PASSWORD, &[]),
        )
        .await?;
        feed_status_where(&ns, "partner", "an unlabelled Secret is refused", |f| {
            expect_condition(&conditions(f), "Accepted", "False", "SecretNotLabelled")
        })
        .await?;
        let mut labelled = basic_auth(NS, "partner-login", "hub", PASSWORD, &[]);
        labelled["metadata"]["labels"] = json!({"taxiway.dev/feed-credentials": "true"});
        apply(client, labelled).await?;
        // No grant, no write: the inbox names only its producer, so the feed is refused
        // until the collection grants `feed:partner` write.
        feed_status_where(&ns, "partner", "an ungranted feed is refused", |f| {
            expect_condition(&conditions(f), "Accepted", "False", "CollectionNotGranted")
        })
        .await?;
        ensure!(
            !ns.config_text("hub").await?.contains("[[feeds]]"),
            "an ungranted feed is rendered"
        );
        apply(
            client,
            taxii_collection(
                NS,
                "inbox",
                json!({"service": "hub", "writable": true,
                       "access": {"write": ["producer", "feed:partner"]}}),
            ),
        )
        .await?;
        // A list feed pointing at a query collection is refused, naming the field.
        apply(
            client,
            taxii_feed(
                "urls.list",
                json!({"service": "hub", "into": "indicators", "url": "https://lists.example/u.txt",
                       "format": "lines", "interval": "1h"}),
            ),
        )
        .await?;
        let partner = feed_status_where(&ns, "partner", "partner accepted", |f| {
            expect_condition(&conditions(f), "Accepted", "True", "Rendered")?;
            // No server pod runs here: the server cannot be asked (and the Endpoints
            // were read: the operator's RBAC allows it).
            expect_condition(&conditions(f), "Ready", "Unknown", "ServerUnreachable")?;
            let ready = conditions(f)
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .context("Ready")?;
            ensure!(
                ready.message.contains("no server pod is ready"),
                "{}",
                ready.message
            );
            Ok(())
        })
        .await?;
        ensure!(partner
            .status
            .clone()
            .unwrap_or_default()
            .objects_stored
            .is_none());
        feed_status_where(&ns, "urls.list", "urls.list refused", |f| {
            expect_condition(&conditions(f), "Accepted", "False", "CollectionNotWritable")
        })
        .await?;

        let config = ns.config_text("hub").await?;
        ensure!(config.contains("[[feeds]]"), "{config}");
        ensure!(config.contains("name = \"partner\""), "{config}");
        ensure!(
            config.contains(&format!("into = \"{inbox_id}\"")),
            "{config}"
        );
        ensure!(config.contains("interval_secs = 300"), "{config}");
        ensure!(
            config.contains("password_file = \"/etc/taxiway/feeds/partner.password\""),
            "{config}"
        );
        ensure!(
            !config.contains(PASSWORD),
            "the password is in the ConfigMap"
        );
        ensure!(
            !config.contains("urls_list"),
            "a refused feed is rendered: {config}"
        );
        let feeds_secret = Api::<Secret>::namespaced(client.clone(), NS)
            .get("hub-feeds")
            .await?;
        let data = feeds_secret.data.unwrap_or_default();
        ensure!(
            data.get("partner.password").map(|b| b.0.as_slice()) == Some(PASSWORD.as_bytes()),
            "the feeds Secret holds the password: {:?}",
            data.keys().collect::<Vec<_>>()
        );
        let deployment_after = Api::<Deployment>::namespaced(client.clone(), NS)
            .get("hub")
            .await?
            .spec
            .and_then(|s| s.template.spec);
        ensure!(
            deployment_before == deployment_after,
            "adding a feed changed the pod template"
        );
        let volumes = service_volumes(&deployment_after);
        ensure!(volumes.iter().any(|v| v == "hub-feeds"), "{volumes:?}");

        // Deleted: gone from the configuration, the Secret and the service's status.
        delete(client, "taxiway.dev/v1alpha1", "TaxiiFeed", NS, "partner").await?;
        delete(client, "taxiway.dev/v1alpha1", "TaxiiFeed", NS, "urls.list").await?;
        eventually("the feeds leave the configuration", WAIT, || async {
            let config = ns.config_text("hub").await?;
            ensure!(!config.contains("[[feeds]]"), "{config}");
            let secret = Api::<Secret>::namespaced(client.clone(), NS)
                .get("hub-feeds")
                .await?;
            ensure!(
                secret.data.unwrap_or_default().is_empty(),
                "the feeds Secret still holds files"
            );
            let status = ns.service("hub").await?.status.unwrap_or_default();
            ensure!(status.feeds.is_empty(), "{:?}", status.feeds);
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// The Secret names of the pod template's volumes.
fn service_volumes(spec: &Option<k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.secret.and_then(|s| s.secret_name))
        .collect()
}
