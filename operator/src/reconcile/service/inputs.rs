//! What a `TaxiiService` reconcile starts from, and how it is fetched (dereference).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::runtime::reflector::Store;
use kube::ResourceExt;

use taxiway_model::config::{Collection, Config};

use crate::crd::{StorageType, TaxiiCollection, TaxiiFeed, TaxiiService};
use crate::credentials::CredentialsFile;
use crate::names;
use crate::reconcile::apply::controlled_by;
use crate::reconcile::service::validate::{Selector, BASIC_AUTH};
use crate::reconcile::Error;

/// Operator-wide settings the rendering depends on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The `taxiway-server` image used when a TaxiiService names none.
    pub server_image: String,
    /// The cluster's DNS domain, for in-cluster URLs.
    pub cluster_domain: String,
    /// Image prefixes a TaxiiService's `spec.image` must start with; any image when
    /// empty (`server_image` is always allowed).
    pub allowed_image_prefixes: Vec<String>,
    /// The namespace the operator runs in, when it runs in the cluster
    /// (`$POD_NAMESPACE`): a server NetworkPolicy lets it reach the admin port, where
    /// it asks how feeds run.
    pub operator_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_image: default_server_image(),
            cluster_domain: "cluster.local".into(),
            allowed_image_prefixes: vec![],
            operator_namespace: None,
        }
    }
}

/// The server image matching this operator's version.
pub fn default_server_image() -> String {
    format!(
        "ghcr.io/taxiway-dev/taxiway-server:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// A TaxiiService with everything it references, as read from the API.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The service.
    pub service: TaxiiService,
    /// Every readable TaxiiCollection naming it.
    pub collections: Vec<TaxiiCollection>,
    /// Every readable TaxiiFeed naming it, by name.
    pub feeds: Vec<TaxiiFeed>,
    /// Referenced Secrets that exist, by name (users, TLS, client CA, the TaxiiFeeds'
    /// credentials, CAs and client certificates).
    pub secrets: BTreeMap<String, Secret>,
    /// The Secrets `spec.userSelector` selects, by name order (only the type and
    /// metadata of those that are not `kubernetes.io/basic-auth`); empty without a
    /// valid selector.
    pub selected_secrets: Vec<Secret>,
    /// Referenced ConfigMaps that exist, by name (client CA, `collectionsFrom`).
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// The credentials file the operator generated last time, if readable.
    pub previous_credentials: Option<CredentialsFile>,
    /// The query each collection id was served with last time (from the rendered
    /// ConfigMap), so a collection whose query is edited into an invalid one keeps
    /// serving its last valid query.
    pub previous_queries: BTreeMap<String, String>,
    /// Every collection served last time (from the rendered ConfigMap): the ones of
    /// `spec.collectionsFrom` keep being served while its JSON cannot be read.
    pub previous_collections: Vec<Collection>,
    /// The live server Deployment, as far as a store switch is concerned.
    pub live: Option<LiveDeployment>,
    /// The embedded store's PersistentVolumeClaim of this service exists (it is kept
    /// after a switch to PostgreSQL: it may hold objects not yet copied there).
    pub embedded_claim: bool,
}

/// What the live server Deployment says about the store its pods use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveDeployment {
    /// The store its pod template runs on (a claim-backed `data` volume: embedded).
    pub storage: Option<StorageType>,
    /// It is replacing its pods with `Recreate` and has not finished: a store switch
    /// in progress, which must finish the same way.
    pub recreating: bool,
}

impl LiveDeployment {
    /// Read from a live Deployment.
    pub fn of(deployment: &Deployment) -> LiveDeployment {
        let spec = deployment.spec.as_ref();
        let storage = spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "data"))
            .map(|data| {
                if data.persistent_volume_claim.is_some() {
                    StorageType::Embedded
                } else {
                    StorageType::Postgres
                }
            });
        let recreate = spec
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.type_.as_deref())
            == Some("Recreate");
        let status = deployment.status.clone().unwrap_or_default();
        let wanted = spec.and_then(|s| s.replicas).unwrap_or(1);
        let complete = status.observed_generation >= deployment.metadata.generation
            && status.updated_replicas.unwrap_or(0) == wanted
            && status.replicas.unwrap_or(0) == wanted
            && status.available_replicas.unwrap_or(0) == wanted;
        LiveDeployment {
            storage,
            recreating: recreate && !complete,
        }
    }
}

/// Collection id → query of the configuration the operator rendered last time.
pub fn served_queries(config_map: &ConfigMap) -> BTreeMap<String, String> {
    served_collections(config_map)
        .into_iter()
        .filter_map(|c| Some((c.id, c.query?)))
        .collect()
}

/// The collections of the configuration the operator rendered last time.
pub fn served_collections(config_map: &ConfigMap) -> Vec<Collection> {
    config_map
        .data
        .as_ref()
        .and_then(|d| d.get(taxiway_model::config::CONFIG_FILE))
        .and_then(|text| toml::from_str::<Config>(text).ok())
        .map(|config| config.collections)
        .unwrap_or_default()
}

/// The credentials file in the generated Secret, if the TaxiiService with `owner_uid`
/// controls that Secret (an object of that name it does not own is never read).
pub fn previous_credentials(secret: &Secret, owner_uid: &str) -> Option<CredentialsFile> {
    if !controlled_by(secret, owner_uid) {
        return None;
    }
    let bytes = secret.data.as_ref()?.get(crate::credentials::FILE_NAME)?;
    CredentialsFile::parse(&bytes.0).ok()
}

/// Names of the Secrets a service spec references.
pub fn referenced_secrets(service: &TaxiiService) -> Vec<String> {
    let spec = &service.spec;
    let mut names: Vec<String> = spec.users.iter().map(|u| u.secret_name.clone()).collect();
    if let Some(tls) = &spec.tls {
        names.push(tls.secret_name.clone());
        if let Some(name) = tls.client_ca.as_ref().and_then(|c| c.secret_name.clone()) {
            names.push(name);
        }
    }
    if let Some(pg) = &spec.storage.postgres {
        names.push(pg.secret_name.clone());
        names.extend(pg.ca_secret_name.clone());
    }
    names.sort();
    names.dedup();
    names
}

/// Names of the Secrets a TaxiiFeed references.
pub fn feed_secrets(feed: &TaxiiFeed) -> Vec<String> {
    let spec = &feed.spec;
    spec.credentials
        .as_ref()
        .map(|c| c.secret_name.clone())
        .into_iter()
        .chain(spec.ca_secret_name.clone())
        .chain(spec.client_cert_secret_name.clone())
        .collect()
}

/// `spec.userSelector`, when it is set and valid (an invalid one selects nothing and is
/// reported by validation).
pub fn user_selector(service: &TaxiiService) -> Option<Selector> {
    Selector::parse(service.spec.user_selector.as_ref()?).ok()
}

/// A selected Secret as far as it is needed: a `kubernetes.io/basic-auth` one whole,
/// any other without its data (it is only counted as ignored).
fn keep_only_users(mut secret: Secret) -> Secret {
    if secret.type_.as_deref() != Some(BASIC_AUTH) {
        secret.data = None;
        secret.string_data = None;
    }
    secret
}

/// Names of the ConfigMaps a service spec references.
pub fn referenced_config_maps(service: &TaxiiService) -> Vec<String> {
    let ca = service.spec.tls.as_ref().and_then(|t| t.client_ca.as_ref());
    let from = service.spec.collections_from.as_ref();
    ca.and_then(|c| c.config_map_name.clone())
        .into_iter()
        .chain(from.map(|f| f.config_map_name.clone()))
        .collect()
}

/// The name of the TaxiiService a (possibly malformed) TaxiiCollection or TaxiiFeed
/// names.
pub fn service_of(collection: &DynamicObject) -> Option<&str> {
    collection.data.get("spec")?.get("service")?.as_str()
}

/// Fetch everything `service` references. Collections come from the watch cache;
/// ones that cannot be read are left to the collection controller to report.
pub async fn dereference(
    client: &kube::Client,
    service: TaxiiService,
    collections: &Store<DynamicObject>,
    feed_objects: &Store<DynamicObject>,
) -> Result<Inputs, Error> {
    let namespace = service
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = service.name_any();
    let mut mine: Vec<TaxiiCollection> = collections
        .state()
        .iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|c| service_of(c) == Some(name.as_str()))
        .filter_map(|c| c.as_ref().clone().try_parse::<TaxiiCollection>().ok())
        .collect();
    mine.sort_by_key(|c| c.name_any());
    let mut feeds: Vec<TaxiiFeed> = feed_objects
        .state()
        .iter()
        .filter(|f| f.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|f| service_of(f) == Some(name.as_str()))
        .filter_map(|f| f.as_ref().clone().try_parse::<TaxiiFeed>().ok())
        .collect();
    feeds.sort_by_key(|f| f.name_any());

    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut secrets = BTreeMap::new();
    let mut wanted = referenced_secrets(&service);
    wanted.extend(feeds.iter().flat_map(feed_secrets));
    wanted.sort();
    wanted.dedup();
    for secret_name in wanted {
        if let Some(secret) = secret_api.get_opt(&secret_name).await? {
            secrets.insert(secret_name, secret);
        }
    }
    let selected_secrets = match user_selector(&service) {
        Some(selector) => {
            let params = ListParams::default().labels(&selector.to_string());
            let mut selected: Vec<Secret> = secret_api
                .list(&params)
                .await?
                .items
                .into_iter()
                .filter(|s| selector.matches(&s.labels().clone()))
                .map(keep_only_users)
                .collect();
            selected.sort_by_key(|s| s.name_any());
            selected
        }
        None => vec![],
    };
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let mut config_maps = BTreeMap::new();
    for cm_name in referenced_config_maps(&service) {
        if let Some(cm) = cm_api.get_opt(&cm_name).await? {
            config_maps.insert(cm_name, cm);
        }
    }
    // What the operator rendered last time is read back only from objects this
    // TaxiiService controls: anyone who may create Secrets in the namespace can create
    // one with the expected name.
    let uid = service.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let previous_credentials = secret_api
        .get_opt(&names::credentials_secret(&name))
        .await?
        .and_then(|s| previous_credentials(&s, &uid));
    let rendered = cm_api
        .get_opt(&names::config_map(&name))
        .await?
        .filter(|cm| controlled_by(cm, &uid));
    let previous_queries = rendered.as_ref().map(served_queries).unwrap_or_default();
    let previous_collections = rendered
        .as_ref()
        .map(served_collections)
        .unwrap_or_default();

    let live = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get_opt(&names::workload(&name))
        .await?
        .filter(|d| controlled_by(d, &uid))
        .as_ref()
        .map(LiveDeployment::of);
    let embedded_claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
        .get_opt(&names::data_claim(&name))
        .await?
        .is_some_and(|claim| controlled_by(&claim, &uid));

    Ok(Inputs {
        service,
        collections: mine,
        feeds,
        secrets,
        selected_secrets,
        config_maps,
        previous_credentials,
        previous_queries,
        previous_collections,
        live,
        embedded_claim,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use k8s_openapi::ByteString;

    use super::*;

    const UID: &str = "0b9d2c1e-5f3a-4c6b-8d7e-1a2b3c4d5e6f";

    fn credentials_secret(owner: Option<OwnerReference>) -> Secret {
        let text = "[[users]]\nname = \"alice\"\ndisabled = true\n";
        Secret {
            metadata: ObjectMeta {
                name: Some("feeds-credentials".into()),
                owner_references: owner.map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                crate::credentials::FILE_NAME.to_string(),
                ByteString(text.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "taxiway.dev/v1alpha1".into(),
            kind: "TaxiiService".into(),
            name: "feeds".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn previous_credentials_come_only_from_a_secret_the_service_controls() {
        let owned = credentials_secret(Some(owner(UID, true)));
        let file = previous_credentials(&owned, UID).expect("read from its own Secret");
        assert_eq!(file.users[0].name, "alice");
        for planted in [
            credentials_secret(None),
            credentials_secret(Some(owner("11111111-2222-4333-8444-555555555555", true))),
            credentials_secret(Some(owner(UID, false))),
        ] {
            assert!(previous_credentials(&planted, UID).is_none(), "{planted:?}");
        }
    }

    #[test]
    fn served_queries_are_read_back_from_the_rendered_config_map() {
        let text = r#"
[service]
title = "t"

[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "11111111-1111-4111-8111-111111111111"
api_root = "feeds"
title = "Malware"
query = "type:malware"

[[collections]]
id = "22222222-2222-4222-8222-222222222222"
api_root = "feeds"
title = "Inbox"
writable = true
"#;
        let cm = ConfigMap {
            data: Some(BTreeMap::from([(
                taxiway_model::config::CONFIG_FILE.to_string(),
                text.to_string(),
            )])),
            ..ConfigMap::default()
        };
        let queries = served_queries(&cm);
        assert_eq!(
            queries,
            BTreeMap::from([(
                "11111111-1111-4111-8111-111111111111".to_string(),
                "type:malware".to_string()
            )])
        );
        assert!(served_queries(&ConfigMap::default()).is_empty());
    }
}
