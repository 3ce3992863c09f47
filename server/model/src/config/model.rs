//! The configuration model: what `config/taxiway.toml` says.

use serde::{Deserialize, Serialize};

use super::auth::AuthSettings;
use super::server::ServerSettings;

/// The whole service configuration, as read from the config directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Service-wide settings (discovery, versions served).
    pub service: Service,
    /// Limits on what clients may ask for or send.
    #[serde(default)]
    pub limits: Limits,
    /// Connection and request limits of the TAXII listener (applied at start).
    #[serde(default)]
    pub server: ServerSettings,
    /// Store maintenance settings.
    #[serde(default)]
    pub store: StoreSettings,
    /// Authentication: lockout, client certificates, proxies.
    #[serde(default)]
    pub auth: AuthSettings,
    /// API roots, each a URL path segment.
    #[serde(default, rename = "api_roots")]
    pub api_roots: Vec<ApiRoot>,
    /// Collections, stored or query.
    #[serde(default)]
    pub collections: Vec<Collection>,
    /// Upstream TAXII collections, bundles and IOC lists pulled into collections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feeds: Vec<super::feeds::Feed>,
}

/// A TAXII version the service can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaxiiVersion {
    /// TAXII 2.0 (discovery at `/taxii/`).
    #[serde(rename = "2.0")]
    V20,
    /// TAXII 2.1 (discovery at `/taxii2/`).
    #[serde(rename = "2.1")]
    V21,
}

/// Service-level settings shown in discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Discovery title.
    pub title: String,
    /// Discovery description.
    #[serde(default)]
    pub description: Option<String>,
    /// Discovery contact.
    #[serde(default)]
    pub contact: Option<String>,
    /// TAXII versions served; default `["2.1"]`.
    #[serde(default = "default_versions")]
    pub versions: Vec<TaxiiVersion>,
    /// The API root named as `default` in discovery.
    #[serde(default)]
    pub default_api_root: Option<String>,
    /// Base URL clients use to reach the service (e.g. `https://taxii.example.com/prefix`);
    /// when unset, URLs are built from the request's `Host`.
    #[serde(default)]
    pub external_url: Option<String>,
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-Host/Proto/Prefix`
    /// headers are believed; none by default.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_versions() -> Vec<TaxiiVersion> {
    vec![TaxiiVersion::V21]
}

/// Request and response limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest page a client can get; larger `limit` values are lowered silently.
    pub max_page_size: usize,
    /// Page size when the client gives no `limit`.
    pub default_page_size: usize,
    /// Largest request body accepted (bytes), announced as `max_content_length`.
    pub max_content_length: usize,
    /// Bytes of objects one page of objects holds at most: a page stops early (with
    /// `more`, or a shorter `Content-Range` on TAXII 2.0) rather than exceed it. A page
    /// always holds at least one object, however large.
    pub max_page_bytes: usize,
    /// Largest object accepted (bytes of its JSON); a larger one is a failure in the
    /// status resource, the rest of the envelope is stored.
    pub max_object_bytes: usize,
    /// Memory for cached bodies of full objects pages (bytes, their compressed forms
    /// counted); 0 turns the cache off.
    pub page_cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_page_size: 1000,
            default_page_size: 1000,
            max_content_length: 10 * 1024 * 1024,
            max_page_bytes: 16 * 1024 * 1024,
            max_object_bytes: 1024 * 1024,
            page_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Store settings: which backend, and maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Which store: the embedded SQLite file (default) or PostgreSQL. Read at start.
    pub backend: StoreBackend,
    /// How often (seconds) queries using relative time (`now-30d`) are re-evaluated.
    pub refresh_interval_secs: u64,
    /// How long (hours) status resources are kept; at least 24.
    pub status_retention_hours: u64,
    /// PostgreSQL connection settings (required with `backend = "postgres"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSettings>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Sqlite,
            refresh_interval_secs: 60,
            status_retention_hours: 48,
            postgres: None,
        }
    }
}

/// The store backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite in the data directory: one server process.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by any number of server replicas.
    Postgres,
}

/// How to reach PostgreSQL. The URL and password are never in the config itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// A mounted Secret: a file `uri` or `url` holding a `postgres://` URL, or files
    /// `host`, `port`, `dbname`, `username` (or `user`), `password`; optional `ca.crt`.
    #[serde(default)]
    pub secret_dir: Option<std::path::PathBuf>,
    /// Alternative to `secret_dir`: the environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Connections in the pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// `disable`, `require` (TLS without certificate checks) or `verify-full`.
    #[serde(default)]
    pub tls: PostgresTls,
    /// CA bundle (PEM) for `verify-full`; overrides `ca.crt` in `secret_dir`.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Seconds to wait for a connection to be established.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_pool_size() -> usize {
    16
}

fn default_connect_timeout() -> u64 {
    5
}

/// TLS to PostgreSQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresTls {
    /// Plain TCP.
    Disable,
    /// TLS, but any certificate is accepted (protects against passive eavesdropping only).
    Require,
    /// TLS; the chain is verified against the CA (or the webpki roots) and the host name.
    #[default]
    VerifyFull,
}

/// An API root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRoot {
    /// The URL path segment (`feeds` serves `/feeds/`).
    pub path: String,
    /// API root title.
    pub title: String,
    /// API root description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A collection: either `writable` (stored) or a `query` over the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// The TAXII collection id: a lowercase UUIDv4 (or UUIDv5, as
    /// [`collection_id`](super::xsoar::collection_id) makes).
    pub id: String,
    /// The API root path this collection lives in.
    pub api_root: String,
    /// Title, unique per API root.
    pub title: String,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Optional alias, unique per API root.
    #[serde(default)]
    pub alias: Option<String>,
    /// A stored collection producers may POST to.
    #[serde(default)]
    pub writable: bool,
    /// The query of a read-only query collection.
    #[serde(default)]
    pub query: Option<String>,
    /// The language `query` is written in: native (default) or `xsoar`.
    #[serde(default, skip_serializing_if = "QueryDialect::is_native")]
    pub dialect: QueryDialect,
    /// Query collections only: the writable collections (id, alias or title) the query
    /// draws from. Unset: every writable collection that all of this collection's
    /// readers may read anyway (see docs/security.md).
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// Who may read and write.
    #[serde(default)]
    pub access: Access,
}

/// The language of a collection's `query`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryDialect {
    /// The Taxiway query language (docs/query-language.md).
    #[default]
    Native,
    /// A Cortex XSOAR indicator query, translated once into the native language
    /// ([`crate::query::xsoar::translate`]).
    Xsoar,
}

impl QueryDialect {
    /// Whether this is the native language (the default, left out when serialising).
    pub fn is_native(&self) -> bool {
        *self == QueryDialect::Native
    }
}

/// Access rules of a collection. Entries are user names or `group:<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Users/groups that may read; empty = every authenticated user.
    #[serde(default)]
    pub read: Vec<String>,
    /// Users/groups that may write (writable collections only); empty = nobody. When the
    /// service runs open (no users configured at all) everyone may write.
    #[serde(default)]
    pub write: Vec<String>,
    /// Allow reading without credentials.
    #[serde(default)]
    pub anonymous_read: bool,
}
