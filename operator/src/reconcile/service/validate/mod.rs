//! Validate: from a TaxiiService and what it references to the configuration the server
//! will run, the users it will accept, and every problem found. Pure: no client.
//!
//! The server's own `config::validate` is the judge of the configuration, so the
//! operator never ships a file the server would reject. Collections are admitted one at
//! a time (oldest first); one the server would reject is left out and reported on its
//! own status, and the others keep being served.

use std::collections::BTreeSet;
use std::num::NonZeroU64;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use taxiway_server::auth::{AuthSettings, ClientCertUser as ServerClientCertUser};
use taxiway_server::config::{
    self as server_config, Access, ApiRoot, Collection, Config, ConfigError, Limits, Service,
    StoreSettings,
};
use taxiway_server::query::Query;

use super::inputs::{Inputs, Settings};
use crate::crd::{
    AuthSpec, ClientCertUser, TaxiiCollection, TaxiiCollectionSpec, TaxiiService, TaxiiVersion,
};
use crate::credentials::PlainUser;
use crate::names;

/// The Secret type users' Secrets must have.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
/// The Secret type the TLS Secret must have.
pub const TLS: &str = "kubernetes.io/tls";

/// What kind of problem, for the `Degraded` reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The service-level settings are not a valid configuration.
    InvalidSpec,
    /// The TLS Secret or client CA is missing or unusable.
    InvalidTls,
    /// A user's Secret is missing or unusable.
    InvalidUserSecret,
    /// More replicas than the storage can serve.
    UnsupportedReplicas,
    /// One or more collections are not served.
    RejectedCollections,
}

impl ProblemKind {
    /// The CamelCase reason.
    pub fn reason(self) -> &'static str {
        match self {
            ProblemKind::InvalidSpec => "InvalidSpec",
            ProblemKind::InvalidTls => "InvalidTLS",
            ProblemKind::InvalidUserSecret => "InvalidUserSecret",
            ProblemKind::UnsupportedReplicas => "UnsupportedReplicas",
            ProblemKind::RejectedCollections => "RejectedCollections",
        }
    }
}

/// One problem, as shown on status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Its kind.
    pub kind: ProblemKind,
    /// What is wrong, naming the field or object.
    pub message: String,
}

/// How a collection's query fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryVerdict {
    /// A writable collection has no query.
    Writable,
    /// The query parses.
    Valid,
    /// The parser's message.
    Invalid(String),
    /// Neither a query nor `writable: true`.
    Missing,
}

/// Why a collection is not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// CamelCase reason.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The decision about one TaxiiCollection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionVerdict {
    /// The TaxiiCollection's name.
    pub name: String,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// The TAXII collection id, when one can be told.
    pub id: Option<String>,
    /// The API root it is (or would be) served in.
    pub api_root: String,
    /// The collection URL, when served.
    pub url: Option<String>,
    /// The query's verdict.
    pub query: QueryVerdict,
    /// Why it is not served; `None` when it is.
    pub rejection: Option<Rejection>,
}

/// TLS as the pod will mount it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPlan {
    /// The `kubernetes.io/tls` Secret.
    pub secret_name: String,
    /// Where `ca.crt` comes from, if client certificates are verified.
    pub client_ca: Option<CaSource>,
}

/// A client-CA bundle's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// A key of a Secret.
    Secret {
        /// Secret name.
        name: String,
        /// Key.
        key: String,
    },
    /// A key of a ConfigMap.
    ConfigMap {
        /// ConfigMap name.
        name: String,
        /// Key.
        key: String,
    },
}

/// Where clients reach a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    /// Base URL inside the cluster (`https://NAME.NS.svc.cluster.local`).
    pub in_cluster: String,
    /// Base URL outside the cluster, if one is configured.
    pub external: Option<String>,
}

impl Urls {
    /// The base URL clients should use: external when there is one.
    pub fn base(&self) -> &str {
        self.external.as_deref().unwrap_or(&self.in_cluster)
    }

    /// The collection's URL.
    pub fn collection(&self, api_root: &str, id: &str) -> String {
        format!("{}/{api_root}/collections/{id}/", self.base())
    }
}

/// The outcome of validation: what to render and what to report.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The server configuration with every accepted collection; `None` when the
    /// service-level settings are invalid (the ConfigMap is then left as it is).
    pub config: Option<Config>,
    /// One verdict per TaxiiCollection naming the service.
    pub collections: Vec<CollectionVerdict>,
    /// Users with usable Secrets, in spec order.
    pub users: Vec<PlainUser>,
    /// TLS, if configured (rendered even when its Secret is unusable: never downgrade
    /// to plain HTTP).
    pub tls: Option<TlsPlan>,
    /// Replicas to run.
    pub replicas: i32,
    /// Service port.
    pub port: i32,
    /// URLs.
    pub urls: Urls,
    /// Everything wrong, in a stable order.
    pub problems: Vec<Problem>,
}

impl Validated {
    /// Collections served.
    pub fn accepted(&self) -> usize {
        self.collections
            .iter()
            .filter(|c| c.rejection.is_none())
            .count()
    }
}

/// Validate `inputs` into what to render and what to report.
pub fn validate(inputs: &Inputs, settings: &Settings) -> Validated {
    let service = &inputs.service;
    let spec = &service.spec;
    let mut problems = Vec::new();

    let tls = validate_tls(inputs, &mut problems);
    let port = spec
        .service
        .port
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let urls = urls(service, settings, tls.is_some(), port);
    let users = validate_users(inputs, &mut problems);

    let replicas = if spec.replicas > 1 {
        problems.push(Problem {
            kind: ProblemKind::UnsupportedReplicas,
            message: format!(
                "spec.replicas: the embedded store serves one replica, got {}; running 1",
                spec.replicas
            ),
        });
        1
    } else {
        spec.replicas.max(0)
    };

    let base = base_config(service, &urls);
    let (config, collections) = match server_config::validate(base.clone()) {
        Ok(_) => {
            let (config, verdicts) = admit_collections(base, &inputs.collections, &urls);
            (Some(config), verdicts)
        }
        Err(e) => {
            for message in service_problems(e) {
                problems.push(Problem {
                    kind: ProblemKind::InvalidSpec,
                    message,
                });
            }
            let verdicts = inputs
                .collections
                .iter()
                .map(|c| {
                    let mut v = verdict(c, &base);
                    v.rejection = Some(Rejection {
                        reason: "ServiceInvalid",
                        message: format!(
                            "TaxiiService {} has an invalid spec; see its status",
                            service.name_any()
                        ),
                    });
                    v
                })
                .collect();
            (None, verdicts)
        }
    };
    let rejected: Vec<&str> = collections
        .iter()
        .filter(|c| c.rejection.is_some() && config.is_some())
        .map(|c| c.name.as_str())
        .collect();
    if !rejected.is_empty() {
        problems.push(Problem {
            kind: ProblemKind::RejectedCollections,
            message: format!("collections not served: {}", rejected.join(", ")),
        });
    }
    problems.sort_by_key(|p| p.kind);

    Validated {
        config,
        collections,
        users,
        tls,
        replicas,
        port,
        urls,
        problems,
    }
}

fn urls(service: &TaxiiService, settings: &Settings, tls: bool, port: i32) -> Urls {
    let scheme = if tls { "https" } else { "http" };
    let default_port = if tls { 443 } else { 80 };
    let host = format!(
        "{}.{}.svc.{}",
        names::workload(&service.name_any()),
        service.namespace().unwrap_or_default(),
        settings.cluster_domain
    );
    let in_cluster = if port == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    };
    Urls {
        in_cluster,
        external: external_url(service),
    }
}

/// `spec.externalUrl`, else the Ingress host (https when the Ingress has TLS).
fn external_url(service: &TaxiiService) -> Option<String> {
    let spec = &service.spec;
    if let Some(url) = &spec.external_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    spec.ingress.as_ref().map(|ingress| {
        let scheme = if ingress.tls_secret_name.is_some() {
            "https"
        } else {
            "http"
        };
        format!(
            "{scheme}://{}{}",
            ingress.host,
            ingress.path.trim_end_matches('/')
        )
    })
}

/// The configuration without collections: service, limits, store, API roots.
fn base_config(service: &TaxiiService, urls: &Urls) -> Config {
    let spec = &service.spec;
    let mut versions: Vec<server_config::TaxiiVersion> = spec
        .versions
        .iter()
        .map(|v| match v {
            TaxiiVersion::V20 => server_config::TaxiiVersion::V20,
            TaxiiVersion::V21 => server_config::TaxiiVersion::V21,
        })
        .collect();
    versions.dedup();
    let mut limits = Limits::default();
    if let Some(l) = &spec.limits {
        let size = |v: Option<u64>, default: usize| {
            v.map_or(default, |v| usize::try_from(v).unwrap_or(usize::MAX))
        };
        limits.max_page_size = size(l.max_page_size, limits.max_page_size);
        limits.default_page_size = size(l.default_page_size, limits.default_page_size);
        limits.max_content_length = size(l.max_content_length, limits.max_content_length);
    }
    let mut store = StoreSettings::default();
    if let Some(secs) = spec.storage.refresh_interval_seconds {
        store.refresh_interval_secs = secs;
    }
    if let Some(hours) = spec.storage.status_retention_hours {
        store.status_retention_hours = hours;
    }
    Config {
        service: Service {
            title: spec.title.clone(),
            description: spec.description.clone(),
            contact: spec.contact.clone(),
            versions,
            default_api_root: spec.default_api_root.clone(),
            external_url: urls.external.clone(),
            trusted_proxies: spec.trusted_proxies.clone(),
        },
        limits,
        store,
        auth: auth_settings(spec.auth.as_ref()),
        api_roots: spec
            .api_roots
            .iter()
            .map(|r| ApiRoot {
                path: r.path.clone(),
                title: r.title.clone(),
                description: r.description.clone(),
            })
            .collect(),
        collections: vec![],
    }
}

/// `[auth]`: the server's defaults, overridden by what the spec sets.
fn auth_settings(spec: Option<&AuthSpec>) -> AuthSettings {
    let mut auth = AuthSettings::default();
    let Some(spec) = spec else {
        return auth;
    };
    if let Some(n) = spec.max_failures_per_user {
        auth.max_failures_per_user = n;
    }
    if let Some(n) = spec.max_failures_per_address {
        auth.max_failures_per_address = n;
    }
    if let Some(secs) = spec.failure_window_seconds.and_then(NonZeroU64::new) {
        auth.failure_window_secs = secs;
    }
    if let Some(secs) = spec.lockout_seconds.and_then(NonZeroU64::new) {
        auth.lockout_secs = secs;
    }
    if let Some(user) = spec.client_cert_user {
        auth.client_cert_user = match user {
            ClientCertUser::Cn => ServerClientCertUser::Cn,
            ClientCertUser::San => ServerClientCertUser::San,
            ClientCertUser::None => ServerClientCertUser::None,
        };
    }
    auth
}

/// Service-level problems in the CR's own vocabulary.
fn service_problems(error: ConfigError) -> Vec<String> {
    match error {
        ConfigError::Invalid(problems) => problems
            .into_iter()
            .map(|p| format!("spec.{}: {}", spec_path(&p.at), p.message))
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A server config path (`api_roots[0].path`, `store.status_retention_hours`) as the
/// TaxiiService field that sets it.
fn spec_path(at: &str) -> String {
    at.replace("api_roots", "apiRoots")
        .replace("service.default_api_root", "defaultApiRoot")
        .replace("service.external_url", "externalUrl")
        .replace("service.trusted_proxies", "trustedProxies")
        .replace("service.", "")
        .replace(
            "store.status_retention_hours",
            "storage.statusRetentionHours",
        )
        .replace(
            "store.refresh_interval_secs",
            "storage.refreshIntervalSeconds",
        )
        .replace("max_page_size", "maxPageSize")
        .replace("default_page_size", "defaultPageSize")
        .replace("max_content_length", "maxContentLength")
}

/// The server's view of one TaxiiCollection, before it is checked.
fn settings_of(collection: &TaxiiCollection, base: &Config) -> Option<Collection> {
    let spec = &collection.spec;
    let id = spec.id.clone().or_else(|| collection.uid())?;
    Some(Collection {
        id,
        api_root: api_root_of(collection, base),
        title: spec.title.clone().unwrap_or_else(|| collection.name_any()),
        description: spec.description.clone(),
        alias: spec.alias.clone(),
        writable: spec.writable,
        query: spec.query.clone(),
        access: Access {
            read: spec.access.read.clone(),
            write: spec.access.write.clone(),
            anonymous_read: spec.access.anonymous_read,
        },
    })
}

fn api_root_of(collection: &TaxiiCollection, base: &Config) -> String {
    collection
        .spec
        .api_root
        .clone()
        .or_else(|| base.service.default_api_root.clone())
        .or_else(|| base.api_roots.first().map(|r| r.path.clone()))
        .unwrap_or_default()
}

/// The verdict on a collection's query, by the server's own parser.
pub fn query_verdict(spec: &TaxiiCollectionSpec) -> QueryVerdict {
    match (&spec.query, spec.writable) {
        (_, true) => QueryVerdict::Writable,
        (Some(text), false) => match Query::parse(text) {
            Ok(_) => QueryVerdict::Valid,
            Err(e) => QueryVerdict::Invalid(e.to_string()),
        },
        (None, false) => QueryVerdict::Missing,
    }
}

/// A verdict with the query judged and no decision on acceptance yet.
fn verdict(collection: &TaxiiCollection, base: &Config) -> CollectionVerdict {
    let spec = &collection.spec;
    let query = query_verdict(spec);
    CollectionVerdict {
        name: collection.name_any(),
        generation: collection.metadata.generation,
        id: spec.id.clone().or_else(|| collection.uid()),
        api_root: api_root_of(collection, base),
        url: None,
        query,
        rejection: None,
    }
}

/// Admit collections oldest first; each is checked by the server's validator together
/// with the ones already admitted.
fn admit_collections(
    mut config: Config,
    collections: &[TaxiiCollection],
    urls: &Urls,
) -> (Config, Vec<CollectionVerdict>) {
    let mut order: Vec<&TaxiiCollection> = collections.iter().collect();
    order.sort_by(|a, b| {
        let key = |c: &TaxiiCollection| {
            (
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.name_any(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut verdicts = Vec::with_capacity(order.len());
    for collection in order {
        let mut v = verdict(collection, &config);
        let Some(settings) = settings_of(collection, &config) else {
            v.rejection = Some(Rejection {
                reason: "Invalid",
                message: "metadata.uid is not set yet and spec.id is empty".into(),
            });
            verdicts.push(v);
            continue;
        };
        let index = config.collections.len();
        config.collections.push(settings);
        let messages = match server_config::validate(config.clone()) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid(problems)) => {
                let prefix = format!("collections[{index}].");
                problems
                    .into_iter()
                    .filter_map(|p| {
                        p.at.strip_prefix(&prefix)
                            .map(|field| format!("spec.{}: {}", collection_field(field), p.message))
                    })
                    .collect()
            }
            Err(other) => vec![other.to_string()],
        };
        if messages.is_empty() {
            let served = &config.collections[index];
            v.url = Some(urls.collection(&served.api_root, &served.id));
        } else {
            config.collections.pop();
            let reason = match v.query {
                QueryVerdict::Invalid(_) => "InvalidQuery",
                _ => "Invalid",
            };
            v.rejection = Some(Rejection {
                reason,
                message: messages.join("; "),
            });
        }
        verdicts.push(v);
    }
    verdicts.sort_by(|a, b| a.name.cmp(&b.name));
    (config, verdicts)
}

/// A server collection field as the TaxiiCollection field that sets it.
fn collection_field(field: &str) -> String {
    match field {
        "api_root" => "apiRoot".into(),
        "id" => "id (or metadata.uid)".into(),
        "title" => "title (or metadata.name)".into(),
        "access.write" => "access.write".into(),
        "access.read" => "access.read".into(),
        other => other.to_string(),
    }
}

fn validate_tls(inputs: &Inputs, problems: &mut Vec<Problem>) -> Option<TlsPlan> {
    let tls = inputs.service.spec.tls.as_ref()?;
    let mut problem = |message: String| {
        problems.push(Problem {
            kind: ProblemKind::InvalidTls,
            message,
        })
    };
    match inputs.secrets.get(&tls.secret_name) {
        None => problem(format!(
            "spec.tls.secretName: Secret {} not found",
            tls.secret_name
        )),
        Some(secret) => {
            if secret.type_.as_deref() != Some(TLS) {
                problem(format!(
                    "spec.tls.secretName: Secret {} has type {}, expected {TLS}",
                    tls.secret_name,
                    secret.type_.as_deref().unwrap_or("Opaque")
                ));
            }
            for key in ["tls.crt", "tls.key"] {
                if !has_key(secret, key) {
                    problem(format!(
                        "spec.tls.secretName: Secret {} has no key {key}",
                        tls.secret_name
                    ));
                }
            }
        }
    }
    let client_ca = match &tls.client_ca {
        None => None,
        Some(ca) => match (&ca.secret_name, &ca.config_map_name) {
            (Some(name), None) => {
                match inputs.secrets.get(name) {
                    None => problem(format!("spec.tls.clientCa: Secret {name} not found")),
                    Some(s) if !has_key(s, &ca.key) => problem(format!(
                        "spec.tls.clientCa: Secret {name} has no key {}",
                        ca.key
                    )),
                    Some(_) => {}
                }
                Some(CaSource::Secret {
                    name: name.clone(),
                    key: ca.key.clone(),
                })
            }
            (None, Some(name)) => {
                let found = inputs.config_maps.get(name);
                let has = found.is_some_and(|cm| {
                    cm.data.as_ref().is_some_and(|d| d.contains_key(&ca.key))
                        || cm
                            .binary_data
                            .as_ref()
                            .is_some_and(|d| d.contains_key(&ca.key))
                });
                match found {
                    None => problem(format!("spec.tls.clientCa: ConfigMap {name} not found")),
                    Some(_) if !has => problem(format!(
                        "spec.tls.clientCa: ConfigMap {name} has no key {}",
                        ca.key
                    )),
                    Some(_) => {}
                }
                Some(CaSource::ConfigMap {
                    name: name.clone(),
                    key: ca.key.clone(),
                })
            }
            _ => {
                problem(
                    "spec.tls.clientCa: set exactly one of secretName and configMapName; client certificates are not verified"
                        .into(),
                );
                None
            }
        },
    };
    Some(TlsPlan {
        secret_name: tls.secret_name.clone(),
        client_ca,
    })
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .is_some_and(|v| !v.0.is_empty())
}

fn secret_text(secret: &Secret, key: &str) -> Result<String, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("has no key {key}"))?;
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| format!("key {key} is not UTF-8"))?;
    if text.is_empty() {
        return Err(format!("key {key} is empty"));
    }
    Ok(text)
}

fn validate_users(inputs: &Inputs, problems: &mut Vec<Problem>) -> Vec<PlainUser> {
    let mut users = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, spec) in inputs.service.spec.users.iter().enumerate() {
        let user = inputs
            .secrets
            .get(&spec.secret_name)
            .ok_or_else(|| "not found".to_string())
            .and_then(|secret| {
                let type_ = secret.type_.as_deref().unwrap_or("Opaque");
                if type_ != BASIC_AUTH {
                    return Err(format!("has type {type_}, expected {BASIC_AUTH}"));
                }
                let name = secret_text(secret, "username")?;
                let api_key = spec
                    .api_key_key
                    .as_deref()
                    .map(|key| secret_text(secret, key))
                    .transpose()?;
                // A Secret with an API key and no password is an API-key-only user.
                let password = match secret_text(secret, "password") {
                    Ok(password) => Some(password),
                    Err(_) if api_key.is_some() && !has_key(secret, "password") => None,
                    Err(e) => return Err(e),
                };
                crate::credentials::check_user(&name, &spec.groups).map_err(|problems| {
                    format!("is refused by the server: {}", problems.join("; "))
                })?;
                Ok(PlainUser {
                    name,
                    password,
                    api_key,
                    disabled: spec.disabled,
                    locked: spec.locked,
                    groups: spec.groups.clone(),
                })
            })
            .and_then(|user| {
                if seen.insert(user.name.clone()) {
                    Ok(user)
                } else {
                    Err(format!(
                        "username {} is already used by another user",
                        user.name
                    ))
                }
            });
        match user {
            Ok(user) => users.push(user),
            Err(message) => problems.push(Problem {
                kind: ProblemKind::InvalidUserSecret,
                message: format!(
                    "spec.users[{i}]: Secret {} {message}; the user cannot sign in",
                    spec.secret_name
                ),
            }),
        }
    }
    users
}

#[cfg(test)]
mod tests;
