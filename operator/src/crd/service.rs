//! `TaxiiService`: one TAXII server deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::collections_from::{CollectionsFromSpec, CollectionsFromStatus};

/// The desired state of a TAXII server: discovery, API roots, users, TLS, storage and
/// how it is exposed. Collections are separate `TaxiiCollection` resources naming it.
// kube's `printcolumn(...)` repeats `type_` per column, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taxiway.dev",
    version = "v1alpha1",
    kind = "TaxiiService",
    plural = "taxiiservices",
    singular = "taxiiservice",
    shortname = "taxii",
    shortname = "tsvc",
    category = "taxiway",
    namespaced,
    status = "TaxiiServiceStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    doc = "A TAXII 2.x server: discovery, API roots, users, TLS, storage and exposure.",
    printcolumn(name = "Versions", type_ = "string", json_path = ".spec.versions"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Collections",
        type_ = "integer",
        json_path = ".status.collections"
    ),
    printcolumn(name = "Users", type_ = "integer", json_path = ".status.users"),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.endpoints.discovery",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiServiceSpec {
    /// Discovery title.
    #[schemars(length(min = 1))]
    pub title: String,
    /// Discovery description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Discovery contact (e.g. an e-mail address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// TAXII versions served: `2.1`, `2.0`, or both side by side.
    #[serde(default = "default_versions")]
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "set"))]
    pub versions: Vec<TaxiiVersion>,
    /// API roots, each a URL path segment holding collections.
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["path"]))]
    pub api_roots: Vec<ApiRootSpec>,
    /// The API root discovery names as `default`; defaults to the first API root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_api_root: Option<String>,
    /// Query collections defined in an XSOAR collections JSON held by a ConfigMap, in
    /// addition to the TaxiiCollections naming this service (see docs/migrating.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections_from: Option<CollectionsFromSpec>,
    /// Base URL clients use (e.g. `https://taxii.example.com`); defaults to the Ingress
    /// host when an Ingress is configured, else URLs follow the request's `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^/?#\s]+(/[^?#\s]*)?$"))]
    pub external_url: Option<String>,
    /// Proxies (IP addresses or CIDR ranges, e.g. the Ingress controller's pod network)
    /// whose `X-Forwarded-Host/Proto/Prefix` headers the server believes when it builds
    /// URLs; none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Lockout after failed logins, and how client certificates name users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Users, each from a `kubernetes.io/basic-auth` Secret in this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["secretName"]))]
    pub users: Vec<UserSpec>,
    /// More users, without editing this TaxiiService: every `kubernetes.io/basic-auth`
    /// Secret in this namespace whose labels match (`matchLabels`, `matchExpressions`;
    /// an empty selector is refused). Its `username` and `password` keys sign in; the
    /// annotations `taxiway.dev/groups` (comma-separated), `taxiway.dev/locked` and
    /// `taxiway.dev/disabled` (`"true"`) set groups and flags; an optional key `api-key`
    /// is an API key. A user name that two Secrets, or a Secret and `users`, claim is
    /// refused, never replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_selector: Option<LabelSelector>,
    /// Serve HTTPS with this certificate; without it the server speaks plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Where objects are stored (`embedded` or `postgres`) and store maintenance.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Request and response limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
    /// Server pods: 0 or 1 with the embedded store (it serves one writer); any number
    /// with `storage.type: postgres`.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// The `taxiway-server` image; defaults to the operator's `--server-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// CPU and memory of the server container (defaults: 100m / 128Mi requested, 512Mi limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::resources")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels a server pod's node must have (the pod's `nodeSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the server pods tolerate (the pod's `tolerations`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod (anti-)affinity of the server pods (the pod's `affinity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the server pods spread over zones or nodes (the pod's
    /// `topologySpreadConstraints`; select the pods with `app.kubernetes.io/instance:
    /// <name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Extra annotations of the server pods (e.g. for a service mesh); the operator's
    /// own (`prometheus.io/*`, `taxiway.dev/*`) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Extra labels of the server pods; the operator's own (`app.kubernetes.io/name`,
    /// `instance`, `component`, `taxiway.dev/*`) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// PriorityClass of the server pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Secrets (type `kubernetes.io/dockerconfigjson`, this namespace) to pull the
    /// image with, e.g. from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// ServiceAccount the server pods run as (the namespace's `default` when unset).
    /// Its token is not mounted: the server never calls the Kubernetes API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The Kubernetes Service in front of the server.
    #[serde(default)]
    pub service: ServiceExposure,
    /// An optional Ingress routing a host to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// An optional Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`) attaching
    /// the Service to a Gateway; needs the Gateway API CRDs in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// prometheus-operator objects for the server pods (a `PodMonitor`, a
    /// `PrometheusRule` with alerts); needs the `monitoring.coreos.com` CRDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
    /// An optional NetworkPolicy around the server pods: the TAXII port open only to
    /// `from`, the admin port (metrics) only to `metricsFrom`, every other port closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<ServiceNetworkPolicy>,
}

fn default_versions() -> Vec<TaxiiVersion> {
    vec![TaxiiVersion::V21]
}

fn default_replicas() -> i32 {
    1
}

/// A TAXII version.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum TaxiiVersion {
    /// TAXII 2.0, discovery at `/taxii/`.
    #[serde(rename = "2.0")]
    V20,
    /// TAXII 2.1, discovery at `/taxii2/`.
    #[serde(rename = "2.1")]
    V21,
}

/// An API root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiRootSpec {
    /// URL path segment: letters, digits, `-` and `_` (`feeds` serves `/feeds/`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub path: String,
    /// API root title.
    #[schemars(length(min = 1))]
    pub title: String,
    /// API root description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A user whose name and password live in a `kubernetes.io/basic-auth` Secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// The Secret (same namespace, type `kubernetes.io/basic-auth`) with `username` and
    /// `password`. Only salted hashes of them reach the server.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// A key of the same Secret holding the user's API key (sent as a bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_key: Option<String>,
    /// A disabled user cannot sign in.
    #[serde(default)]
    pub disabled: bool,
    /// A locked user cannot sign in until unlocked.
    #[serde(default)]
    pub locked: bool,
    /// Groups, named in collections' access rules as `group:<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// Authentication settings (server defaults when unset).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Failed logins naming one user, within the window, that lock the user out
    /// (default 10; 0 turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures_per_user: Option<u32>,
    /// Failed logins from one client address, within the window, that lock the
    /// address out (default 30; 0 turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures_per_address: Option<u32>,
    /// The window failures are counted in, in seconds (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub failure_window_seconds: Option<u64>,
    /// How long a lockout lasts, in seconds (default 900).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub lockout_seconds: Option<u64>,
    /// Which name of a verified client certificate is the user name (default `cn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_user: Option<ClientCertUser>,
}

/// Which name of a client certificate names the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClientCertUser {
    /// The subject's common name.
    #[serde(rename = "cn")]
    Cn,
    /// The first subject alternative name that names a user.
    #[serde(rename = "san")]
    San,
    /// Client certificates name nobody.
    #[serde(rename = "none")]
    None,
}

/// HTTPS certificate and optional client-certificate CA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A `kubernetes.io/tls` Secret (e.g. from cert-manager): `tls.crt` and `tls.key`.
    /// Rotations are picked up without a restart.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// CA bundle that client certificates are verified against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<ClientCaSpec>,
}

/// Where the client-certificate CA bundle is: a Secret or a ConfigMap key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCaSpec {
    /// A Secret holding the bundle (exactly one of `secretName` and `configMapName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// A ConfigMap holding the bundle (e.g. from trust-manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    /// The key holding the PEM bundle.
    #[serde(default = "default_ca_key")]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".into()
}

/// Where objects are stored, and store maintenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// `embedded` (SQLite on a PersistentVolumeClaim: one replica, replaced with
    /// `Recreate`) or `postgres` (a PostgreSQL database you operate: any number of
    /// replicas, rolling updates without downtime).
    #[serde(default, rename = "type")]
    pub type_: StorageType,
    /// Size of the PersistentVolumeClaim (`embedded`).
    #[serde(default = "default_storage_size")]
    pub size: String,
    /// StorageClass of the claim (`embedded`); the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The database (`postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
    /// How often (seconds) queries with relative time (`now-30d`) are re-evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub refresh_interval_seconds: Option<u64>,
    /// How long (hours) TAXII status resources are kept; at least 24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 24))]
    pub status_retention_hours: Option<u64>,
}

fn default_storage_size() -> String {
    "1Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            type_: StorageType::Embedded,
            size: default_storage_size(),
            storage_class_name: None,
            postgres: None,
            refresh_interval_seconds: None,
            status_retention_hours: None,
        }
    }
}

/// The store backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// SQLite on a PersistentVolumeClaim.
    #[default]
    Embedded,
    /// PostgreSQL.
    Postgres,
}

/// How the server reaches PostgreSQL. Nothing secret is in this spec or in the rendered
/// ConfigMap: the Secret is mounted into the pods as files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// A Secret in this namespace with either a key `uri` (or `url`) holding a
    /// `postgres://` URL, or keys `host`, `port`, `dbname`, `username` (or `user`) and
    /// `password` — a CloudNativePG `<cluster>-app` Secret works as it is. A key
    /// `ca.crt` is used to verify the server's certificate.
    pub secret_name: String,
    /// A Secret holding the CA bundle that signed the database's certificate, when it is
    /// not `ca.crt` in `secretName` (e.g. CloudNativePG's `<cluster>-ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_name: Option<String>,
    /// The key of the CA bundle in `caSecretName`.
    #[serde(default = "default_ca_key")]
    pub ca_key: String,
    /// TLS to the database: `verify-full` (default: certificate chain and host name
    /// checked), `require` (encrypted, certificate not checked) or `disable`.
    #[serde(default)]
    pub tls: PostgresTlsMode,
    /// Connections each server pod keeps open (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub pool_size: Option<u32>,
}

/// TLS to PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresTlsMode {
    /// Plain TCP (only on a network you trust).
    Disable,
    /// Encrypted; any certificate accepted.
    Require,
    /// Encrypted; the certificate chain and the host name are verified.
    #[default]
    VerifyFull,
}

/// Request and response limits (server defaults when unset).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Largest page a client can get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_page_size: Option<u64>,
    /// Page size when the client gives no `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_page_size: Option<u64>,
    /// Largest request body accepted, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_content_length: Option<u64>,
    /// Memory for cached bodies of full objects pages, in bytes, their gzip and zstd
    /// forms counted (default 64 MiB; 0 turns the cache off). Part of the pod's
    /// memory: raise `resources.limits.memory` with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_cache_bytes: Option<u64>,
    /// Connections each server pod serves at once (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_connections: Option<u64>,
    /// Requests one client address may have in flight at once (default 64; 0 turns
    /// the limit off). Behind an Ingress every client shares the controller's address
    /// unless `trustedProxies` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_client: Option<u64>,
    /// Seconds a request may take (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub request_timeout_seconds: Option<u64>,
    /// Seconds an idle keep-alive connection stays open (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub idle_timeout_seconds: Option<u64>,
    /// Seconds a pod keeps serving, not ready, after SIGTERM (default 5 on PostgreSQL,
    /// 0 on the embedded store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 300))]
    pub shutdown_delay_seconds: Option<u64>,
}

impl LimitsSpec {
    /// Whether any setting the server reads only at start (`[server]`) is set.
    pub fn sets_server_settings(&self) -> bool {
        self.max_connections.is_some()
            || self.max_requests_per_client.is_some()
            || self.request_timeout_seconds.is_some()
            || self.idle_timeout_seconds.is_some()
            || self.shutdown_delay_seconds.is_some()
    }
}

/// Image pull policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is missing.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The Kubernetes Service exposing the TAXII port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExposure {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Service port; 443 with TLS, 80 without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Annotations of the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// An Ingress routing `host` (and `path`) to the Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The IngressClass; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Host name clients use.
    #[schemars(length(min = 1))]
    pub host: String,
    /// Path prefix routed to the server.
    #[serde(default = "default_ingress_path")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// A `kubernetes.io/tls` Secret the Ingress terminates TLS with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// Annotations for the Ingress controller (e.g. backend protocol).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_ingress_path() -> String {
    "/".into()
}

/// An `HTTPRoute` routing `hostnames` (and `path`) from a Gateway to the Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The Gateways (or listeners of one, by `sectionName`) the route attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<GatewayParentRef>,
    /// Host names the route matches; the first is the external URL's host (unless
    /// `externalUrl` or an Ingress sets it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub hostnames: Vec<String>,
    /// Path prefix routed to the server (not rewritten: the server serves under it).
    #[serde(default = "default_ingress_path")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// Scheme clients use through the Gateway's listener (`https` when the listener
    /// terminates TLS, the default), for the URLs in discovery.
    #[serde(default)]
    pub scheme: GatewayScheme,
    /// Annotations of the HTTPRoute.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Gateway the route attaches to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParentRef {
    /// The Gateway's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The Gateway's namespace; this namespace when unset (the Gateway's listener must
    /// allow routes from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One listener of the Gateway, by name; every listener when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// The scheme of the Gateway's listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayScheme {
    /// The listener terminates TLS.
    #[default]
    Https,
    /// Plain HTTP.
    Http,
}

/// prometheus-operator objects (`monitoring.coreos.com/v1`) for the server pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Render a `PodMonitor` scraping the server pods' admin port (`/metrics`);
    /// `false` deletes it.
    #[serde(default)]
    pub pod_monitor: bool,
    /// Render a `PrometheusRule` with alerts for this service (server down, pods not
    /// ready, server errors, refused sign-ins, failed reloads, limited requests);
    /// `false` deletes it.
    #[serde(default)]
    pub prometheus_rule: bool,
    /// Scrape interval (e.g. `30s`); Prometheus' default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub interval: Option<String>,
    /// Extra labels of the PodMonitor and the PrometheusRule, for your Prometheus'
    /// `podMonitorSelector` and `ruleSelector` (e.g. `release: prometheus`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The namespace label that marks where Prometheus runs: the admin port's default
/// allowed source (`metricsFrom`).
pub const MONITORING_NAMESPACE_LABEL: &str = "taxiway.dev/monitoring";

/// A `networking.k8s.io/v1` NetworkPolicy selecting the server pods (ingress only:
/// outgoing connections, e.g. to PostgreSQL, are not restricted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNetworkPolicy {
    /// Render the NetworkPolicy; `false` (or removing `networkPolicy`) deletes it.
    #[serde(default)]
    pub enabled: bool,
    /// Who may connect to the TAXII port: NetworkPolicy peers (`namespaceSelector`
    /// and/or `podSelector`, or `ipBlock`), e.g. the Ingress controller's namespace and
    /// the SIEM's pods. Empty: any source (only the other ports are closed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
    /// Who may connect to the admin port (`/metrics`, probes). Empty: pods in
    /// namespaces labelled `taxiway.dev/monitoring: "true"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_from: Vec<NetworkPolicyPeer>,
}

/// What the operator observed and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiServiceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Where clients reach the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// Collections served.
    #[serde(default)]
    pub collections: i32,
    /// What became of `spec.collectionsFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections_from: Option<CollectionsFromStatus>,
    /// One entry per TaxiiFeed naming the service: whether it is rendered into the
    /// server's configuration, and if not, why (each TaxiiFeed's own status says how
    /// its pulls go).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feeds: Vec<FeedAdmission>,
    /// Users who can sign in (valid Secrets, not disabled).
    #[serde(default)]
    pub users: i32,
    /// Users from `spec.userSelector`'s Secrets; only when it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_selector: Option<UserSelectorStatus>,
    /// Server pods running (the Deployment's `status.replicas`; the `scale`
    /// subresource's current replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the server pods (for the `scale` subresource, e.g. an HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Everything wrong with the spec or what it references, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Settings that work but are probably not what was meant (e.g. an Ingress without
    /// `trustedProxies`), one line each; they do not make the service `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Whether a TaxiiFeed is run by the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedAdmission {
    /// The TaxiiFeed's name.
    pub name: String,
    /// The TaxiiFeed's `metadata.generation` this decision is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Rendered into the server's configuration.
    pub accepted: bool,
    /// CamelCase reason: `Rendered`, or why not.
    pub reason: String,
    /// What is wrong, naming the field; empty when accepted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// URLs of the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// TAXII 2.1 discovery (or 2.0 when only 2.0 is served), as clients should use it.
    pub discovery: String,
    /// The base URL inside the cluster (the Service's DNS name).
    pub in_cluster: String,
    /// The base URL outside the cluster (`externalUrl` or the Ingress), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

/// What `spec.userSelector` selected (counts only: never a name's secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSelectorStatus {
    /// Users taken from selected Secrets (locked and disabled ones included).
    #[serde(default)]
    pub users: i32,
    /// Selected Secrets left out: a user name another Secret or `spec.users` claims, or
    /// a Secret the server cannot use (see `problems`).
    #[serde(default)]
    pub refused: i32,
    /// Secrets whose labels match but whose type is not `kubernetes.io/basic-auth`:
    /// ignored.
    #[serde(default)]
    pub ignored_secrets: i32,
}
