//! Validate: from a TaxiiService and what it references to the configuration the server
//! will run, the users it will accept, and every problem found. Pure: no client.
//!
//! The server's own `config::validate` is the judge of the configuration, so the
//! operator never ships a file the server would reject. Collections are admitted one at
//! a time (oldest first); one the server would reject is left out and reported on its
//! own status, and the others keep being served.

mod collections;
mod collections_from;
mod config;
mod exposure;
mod feeds;
mod image;
mod pod;
mod selector;
mod storage;
mod tls;
mod users;

use kube::ResourceExt;
use taxiway_model::config::{self as server_config, Config};

use super::inputs::{Inputs, Settings};
use crate::crd::{CollectionsFromStatus, TaxiiService};
use crate::credentials::PlainUser;
use crate::names;

pub use collections::{native_query, query_verdict};
pub use config::shutdown_delay_secs;
pub use exposure::{
    gateway_api_unavailable, monitoring_api_unavailable, INGRESS_WITHOUT_TRUSTED_PROXIES,
};
pub use feeds::{
    server_name as feed_server_name, FeedsPlan, API_KEY_KEY as FEED_API_KEY_KEY,
    FEED_CREDENTIALS_LABEL, RENDERED,
};
pub use image::image_allowed;
pub use pod::PodSettings;
pub use selector::{InvalidSelector, Selector};
pub use storage::EMBEDDED_STORE_NOT_MIGRATED;
pub use users::{
    selected_user, SelectorReport, API_KEY_KEY, DISABLED_ANNOTATION, GROUPS_ANNOTATION,
    IGNORED_USER_SECRETS, LOCKED_ANNOTATION,
};

use collections::{admit_collections, verdict};
use collections_from::admit_collections_from;
use config::{base_config, external_url, service_problems};
use exposure::{exposure_warnings, validate_gateway, validate_network_policy};
use feeds::admit_feeds;
use image::validate_image;
use pod::validate_pod;
use storage::{validate_database, validate_replicas};
use tls::validate_tls;
use users::{selector_warnings, validate_users};

/// The Secret type users' Secrets must have.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
/// The Secret type the TLS Secret must have.
pub const TLS: &str = "kubernetes.io/tls";

/// What kind of problem, for the `Degraded` reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// `spec.image` is outside the operator's allow-list: nothing is rendered.
    ImageNotAllowed,
    /// The service-level settings are not a valid configuration.
    InvalidSpec,
    /// A peer of `spec.networkPolicy` is not one the API server accepts.
    InvalidNetworkPolicy,
    /// A pod placement or identity setting is invalid or reserved.
    InvalidPodSettings,
    /// `spec.gateway` names something the API server would refuse.
    InvalidGateway,
    /// `spec.gateway` is set but the cluster serves no Gateway API `HTTPRoute`.
    GatewayApiUnavailable,
    /// `spec.monitoring` asks for an object the cluster does not serve
    /// (prometheus-operator's CRDs are missing).
    MonitoringApiUnavailable,
    /// The TLS Secret or client CA is missing or unusable.
    InvalidTls,
    /// `spec.userSelector` is not a valid label selector (or is empty): no Secret is
    /// selected.
    InvalidUserSelector,
    /// A user name is claimed by two selected Secrets, or by a selected Secret and
    /// `spec.users`: the selected Secrets are left out.
    ConflictingUserSecrets,
    /// A user's Secret is missing or unusable.
    InvalidUserSecret,
    /// More replicas than the storage can serve.
    UnsupportedReplicas,
    /// The PostgreSQL Secret (or its CA Secret) is missing or unusable.
    InvalidStorageSecret,
    /// One or more collections are not served.
    RejectedCollections,
    /// The XSOAR collections JSON of `spec.collectionsFrom` cannot be read as a whole.
    InvalidCollectionsFrom,
    /// One or more TaxiiFeeds are not run.
    RejectedFeeds,
}

impl ProblemKind {
    /// The CamelCase reason.
    pub fn reason(self) -> &'static str {
        match self {
            ProblemKind::ImageNotAllowed => "ImageNotAllowed",
            ProblemKind::InvalidSpec => "InvalidSpec",
            ProblemKind::InvalidNetworkPolicy => "InvalidNetworkPolicy",
            ProblemKind::InvalidPodSettings => "InvalidPodSettings",
            ProblemKind::InvalidGateway => "InvalidGateway",
            ProblemKind::GatewayApiUnavailable => "GatewayAPIUnavailable",
            ProblemKind::MonitoringApiUnavailable => "MonitoringAPIUnavailable",
            ProblemKind::InvalidTls => "InvalidTLS",
            ProblemKind::InvalidUserSelector => "InvalidUserSelector",
            ProblemKind::ConflictingUserSecrets => "ConflictingUserSecrets",
            ProblemKind::InvalidUserSecret => "InvalidUserSecret",
            ProblemKind::UnsupportedReplicas => "UnsupportedReplicas",
            ProblemKind::InvalidStorageSecret => "InvalidStorageSecret",
            ProblemKind::RejectedCollections => "RejectedCollections",
            ProblemKind::InvalidCollectionsFrom => "InvalidCollectionsFrom",
            ProblemKind::RejectedFeeds => "RejectedFeeds",
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

/// A setting that works but is probably not what was meant (not a problem: the service
/// is not `Degraded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// CamelCase reason (of the Warning Event).
    pub reason: &'static str,
    /// What to change, naming the fields.
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
    /// The last valid query it keeps being served with while `spec.query` is invalid.
    pub previous_query: Option<String>,
    /// The query served, in the native language, when it is written in another dialect.
    pub native_query: Option<String>,
    /// Query collections: the TaxiiCollections (names; ids of other collections) it
    /// draws from, as served.
    pub sources: Vec<String>,
    /// The server's warnings about this collection (see `ServiceConfig::warnings`).
    pub warnings: Vec<String>,
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
    /// What became of `spec.collectionsFrom`, when set (and the spec is valid).
    pub collections_from: Option<CollectionsFromStatus>,
    /// One decision per TaxiiFeed naming the service, and the files of those run.
    pub feeds: FeedsPlan,
    /// Users with usable Secrets: `spec.users` in spec order, then the selected ones.
    pub users: Vec<PlainUser>,
    /// What `spec.userSelector` selected; `None` without one.
    pub user_selector: Option<SelectorReport>,
    /// TLS, if configured (rendered even when its Secret is unusable: never downgrade
    /// to plain HTTP).
    pub tls: Option<TlsPlan>,
    /// Replicas to run.
    pub replicas: i32,
    /// The running pods use the other store (`storage.type` changed), or such a switch
    /// is still rolling out: the old pods stop before the new ones start, so the two
    /// stores never take writes side by side.
    pub storage_switch: bool,
    /// Service port.
    pub port: i32,
    /// The server pods' placement and identity settings that are rendered.
    pub pod: PodSettings,
    /// URLs.
    pub urls: Urls,
    /// Everything wrong, in a stable order.
    pub problems: Vec<Problem>,
    /// Settings that work but are probably not what was meant.
    pub warnings: Vec<Warning>,
    /// The service is rejected as a whole (`spec.image` is not allowed): nothing is
    /// rendered, and whatever runs keeps running as it is.
    pub rejected: bool,
}

impl Validated {
    /// Whether `spec.networkPolicy` has a peer the API server would refuse (the live
    /// NetworkPolicy is then left as it is).
    pub fn network_policy_invalid(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == ProblemKind::InvalidNetworkPolicy)
    }

    /// Whether the prometheus-operator objects of `spec.monitoring` cannot be
    /// rendered (the cluster lacks their CRDs): live ones are left as they are.
    pub fn monitoring_unrenderable(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == ProblemKind::MonitoringApiUnavailable)
    }

    /// Whether the service waits for an optional API the cluster does not serve yet.
    pub fn waits_for_api(&self) -> bool {
        self.problems.iter().any(|p| {
            matches!(
                p.kind,
                ProblemKind::GatewayApiUnavailable | ProblemKind::MonitoringApiUnavailable
            )
        })
    }

    /// Whether the `HTTPRoute` of `spec.gateway` cannot be rendered (invalid, or the
    /// cluster serves no Gateway API): the live one, if any, is left as it is.
    pub fn gateway_unrenderable(&self) -> bool {
        self.problems.iter().any(|p| {
            matches!(
                p.kind,
                ProblemKind::InvalidGateway | ProblemKind::GatewayApiUnavailable
            )
        })
    }
}

impl Validated {
    /// Collections served (TaxiiCollections and those of `spec.collectionsFrom`).
    pub fn accepted(&self) -> usize {
        let from = self
            .collections_from
            .as_ref()
            .map_or(0, |f| usize::try_from(f.served).unwrap_or(0));
        self.collections
            .iter()
            .filter(|c| c.rejection.is_none())
            .count()
            + from
    }
}

/// Validate `inputs` into what to render and what to report.
pub fn validate(inputs: &Inputs, settings: &Settings) -> Validated {
    let service = &inputs.service;
    let spec = &service.spec;
    let mut problems = Vec::new();

    let rejected = !validate_image(inputs, settings, &mut problems);
    let tls = validate_tls(inputs, &mut problems);
    let port = spec
        .service
        .port
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let urls = urls(service, settings, tls.is_some(), port);
    let (users, user_selector) = validate_users(inputs, &mut problems);

    let replicas = validate_replicas(inputs, &mut problems);
    validate_database(inputs, &mut problems);
    validate_network_policy(inputs, &mut problems);
    let pod = validate_pod(inputs, &mut problems);
    validate_gateway(inputs, &mut problems);

    let base = base_config(service, &urls);
    let mut collections_from = None;
    let mut feeds = FeedsPlan::default();
    let (config, mut collections) = match server_config::validate(base.clone()) {
        Ok(_) => {
            let (config, verdicts) =
                admit_collections(base, &inputs.collections, &inputs.previous_queries, &urls);
            let (config, from) = if rejected {
                (config, None)
            } else {
                admit_collections_from(config, inputs, &urls, &mut problems)
            };
            collections_from = from;
            let config = if rejected {
                config
            } else {
                let (config, plan) = admit_feeds(config, &inputs.feeds, &verdicts, &inputs.secrets);
                feeds = plan;
                config
            };
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
    if rejected {
        // Nothing reaches the server: no collection is served by this spec.
        for verdict in &mut collections {
            verdict.url = None;
            verdict.previous_query = None;
            verdict.rejection.get_or_insert_with(|| Rejection {
                reason: "ServiceInvalid",
                message: format!(
                    "TaxiiService {} is rejected (its image is not allowed); see its status",
                    service.name_any()
                ),
            });
        }
    }
    let not_served: Vec<&str> = collections
        .iter()
        .filter(|c| c.rejection.is_some() && config.is_some() && !rejected)
        .map(|c| c.name.as_str())
        .collect();
    if !not_served.is_empty() {
        problems.push(Problem {
            kind: ProblemKind::RejectedCollections,
            message: format!("collections not served: {}", not_served.join(", ")),
        });
    }
    if feeds.admissions.is_empty() && (config.is_none() || rejected) {
        // The service cannot run feeds: every TaxiiFeed naming it waits.
        feeds.admissions = inputs
            .feeds
            .iter()
            .map(|feed| crate::crd::FeedAdmission {
                name: feed.name_any(),
                observed_generation: feed.metadata.generation,
                accepted: false,
                reason: "ServiceInvalid".into(),
                message: format!(
                    "TaxiiService {} cannot be rendered; see its status",
                    service.name_any()
                ),
            })
            .collect();
    } else if !feeds.rejected().is_empty() {
        problems.push(Problem {
            kind: ProblemKind::RejectedFeeds,
            message: format!("feeds not run: {}", feeds.rejected().join(", ")),
        });
    }
    problems.sort_by_key(|p| p.kind);

    Validated {
        config,
        collections,
        collections_from,
        feeds,
        users,
        tls,
        replicas,
        storage_switch: inputs.live.is_some_and(|live| {
            live.recreating || live.storage.is_some_and(|s| s != spec.storage.type_)
        }),
        port,
        pod,
        urls,
        problems,
        warnings: exposure_warnings(inputs)
            .into_iter()
            .chain(storage::storage_warnings(inputs))
            .chain(selector_warnings(user_selector.as_ref()))
            .collect(),
        user_selector,
        rejected,
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

#[cfg(test)]
mod tests;
