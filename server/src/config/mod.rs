//! The configuration directory: loading, validation and hot reload.
//!
//! `config/taxiway.toml` holds service settings, API roots and collections (no secrets).
//! A loaded configuration is validated as a whole and compiled (queries parsed) before it
//! replaces the one serving, so a broken change never reaches clients.

mod model;
pub mod watch;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use model::{
    Access, ApiRoot, Collection, Config, Limits, PostgresSettings, PostgresTls, Service,
    StoreBackend, StoreSettings, TaxiiVersion,
};

pub use crate::listener::settings::ServerSettings;

use crate::query::Query;

/// Name of the configuration file inside the config directory.
pub const CONFIG_FILE: &str = "taxiway.toml";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the model.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The file parsed but breaks one or more rules.
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
}

/// One rule a configuration breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: e.g. `collections[2].query`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// What a collection is.
#[derive(Debug, Clone)]
pub enum CollectionKind {
    /// Holds what producers POST to it.
    Stored,
    /// A read-only view: every stored object matching the query.
    Query(Arc<Query>),
}

/// A collection whose settings were validated and whose query is compiled.
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// The configured settings.
    pub settings: Collection,
    /// Stored or query.
    pub kind: CollectionKind,
}

impl CollectionConfig {
    /// The TAXII collection id.
    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// Whether producers may POST to it.
    pub fn is_writable(&self) -> bool {
        matches!(self.kind, CollectionKind::Stored)
    }

    /// Names a `source:` query term can use for this collection: id, title and alias.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = vec![self.settings.id.clone(), self.settings.title.clone()];
        names.extend(self.settings.alias.clone());
        names
    }
}

/// A validated, compiled configuration: what the server serves.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The configuration as written.
    pub config: Config,
    /// Collections in configuration order.
    pub collections: Vec<CollectionConfig>,
    /// `service.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ServiceConfig {
    /// The API root with this path.
    pub fn api_root(&self, path: &str) -> Option<&ApiRoot> {
        self.config.api_roots.iter().find(|r| r.path == path)
    }

    /// The collection with this id in this API root.
    pub fn collection(&self, api_root: &str, id: &str) -> Option<&CollectionConfig> {
        self.collections
            .iter()
            .find(|c| c.settings.api_root == api_root && c.settings.id == id)
    }

    /// Collections of one API root.
    pub fn collections_in<'a>(
        &'a self,
        api_root: &'a str,
    ) -> impl Iterator<Item = &'a CollectionConfig> + 'a {
        self.collections
            .iter()
            .filter(move |c| c.settings.api_root == api_root)
    }

    /// The collection an `import` names by id, alias or title.
    pub fn find_collection(&self, name: &str) -> Option<&CollectionConfig> {
        self.collections
            .iter()
            .find(|c| c.settings.id == name)
            .or_else(|| {
                self.collections
                    .iter()
                    .find(|c| c.settings.alias.as_deref() == Some(name))
            })
            .or_else(|| self.collections.iter().find(|c| c.settings.title == name))
    }

    /// Whether `ip` is one of `service.trusted_proxies` (whose forwarded headers are believed).
    pub fn is_trusted_proxy(&self, ip: &std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// Whether a TAXII version is served.
    pub fn serves(&self, version: TaxiiVersion) -> bool {
        self.config.service.versions.contains(&version)
    }
}

/// Read and validate the configuration in `dir`.
pub fn load_dir(dir: &Path) -> Result<ServiceConfig, ConfigError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Syntax { message, .. } => ConfigError::Syntax { path, message },
        other => other,
    })
}

/// Parse and validate configuration text.
pub fn parse(text: &str) -> Result<ServiceConfig, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: PathBuf::from(CONFIG_FILE),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    validate(config)
}

/// Check every rule and compile the queries; report all problems at once.
pub fn validate(config: Config) -> Result<ServiceConfig, ConfigError> {
    let mut problems = Vec::new();
    let mut problem = |at: String, message: String| problems.push(Problem { at, message });

    if config.service.title.trim().is_empty() {
        problem("service.title".into(), "must not be empty".into());
    }
    if config.service.versions.is_empty() {
        problem(
            "service.versions".into(),
            "at least one TAXII version (\"2.1\" or \"2.0\") must be served".into(),
        );
    }
    if let Some(url) = &config.service.external_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problem(
                "service.external_url".into(),
                format!("must be an absolute http(s) URL, got {url:?}"),
            );
        }
    }
    for (i, proxy) in config.service.trusted_proxies.iter().enumerate() {
        if parse_proxy(proxy).is_none() {
            problem(
                format!("service.trusted_proxies[{i}]"),
                format!("must be an IP address or CIDR range like 10.0.0.0/8, got {proxy:?}"),
            );
        }
    }
    let limits = &config.limits;
    if limits.max_page_size == 0 {
        problem("limits.max_page_size".into(), "must be > 0".into());
    }
    if limits.default_page_size == 0 || limits.default_page_size > limits.max_page_size {
        problem(
            "limits.default_page_size".into(),
            "must be > 0 and <= max_page_size".into(),
        );
    }
    if limits.max_content_length == 0 {
        problem("limits.max_content_length".into(), "must be > 0".into());
    }
    for (field, message) in config.server.problems() {
        problem(format!("server.{field}"), message);
    }
    if config.store.status_retention_hours < 24 {
        problem(
            "store.status_retention_hours".into(),
            "TAXII requires status resources to be kept at least 24 hours".into(),
        );
    }
    if config.store.refresh_interval_secs == 0 {
        problem("store.refresh_interval_secs".into(), "must be > 0".into());
    }
    match (&config.store.backend, &config.store.postgres) {
        (StoreBackend::Postgres, None) => problem(
            "store.postgres".into(),
            "required when store.backend = \"postgres\"".into(),
        ),
        (StoreBackend::Sqlite, Some(_)) => problem(
            "store.postgres".into(),
            "only allowed when store.backend = \"postgres\"".into(),
        ),
        (StoreBackend::Postgres, Some(pg)) => {
            match (&pg.secret_dir, &pg.url_env) {
                (Some(_), Some(_)) | (None, None) => problem(
                    "store.postgres".into(),
                    "set exactly one of secret_dir and url_env".into(),
                ),
                (_, Some(var)) if var.trim().is_empty() => {
                    problem("store.postgres.url_env".into(), "must not be empty".into())
                }
                _ => {}
            }
            if pg.pool_size == 0 || pg.pool_size > 1000 {
                problem(
                    "store.postgres.pool_size".into(),
                    "must be between 1 and 1000".into(),
                );
            }
            if pg.connect_timeout_secs == 0 {
                problem(
                    "store.postgres.connect_timeout_secs".into(),
                    "must be > 0".into(),
                );
            }
            if pg.ca_file.is_some() && pg.tls != PostgresTls::VerifyFull {
                problem(
                    "store.postgres.ca_file".into(),
                    "only used with tls = \"verify-full\"".into(),
                );
            }
        }
        (StoreBackend::Sqlite, None) => {}
    }

    let mut root_paths = HashSet::new();
    for (i, root) in config.api_roots.iter().enumerate() {
        if let Err(message) = check_path_segment(&root.path) {
            problem(format!("api_roots[{i}].path"), message);
        }
        if matches!(root.path.as_str(), "taxii" | "taxii2") {
            problem(
                format!("api_roots[{i}].path"),
                "`taxii` and `taxii2` are reserved for discovery".into(),
            );
        }
        if !root_paths.insert(root.path.as_str()) {
            problem(
                format!("api_roots[{i}].path"),
                format!("duplicate API root {:?}", root.path),
            );
        }
    }
    if let Some(default) = &config.service.default_api_root {
        if !root_paths.contains(default.as_str()) {
            problem(
                "service.default_api_root".into(),
                format!("names no configured API root: {default:?}"),
            );
        }
    }

    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    let mut collections = Vec::with_capacity(config.collections.len());
    for (i, c) in config.collections.iter().enumerate() {
        let at = |field: &str| format!("collections[{i}].{field}");
        if !is_uuid_v4(&c.id) {
            problem(
                at("id"),
                format!("must be a lowercase UUIDv4 (e.g. 2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b), got {:?}", c.id),
            );
        }
        if !ids.insert(c.id.as_str()) {
            problem(at("id"), format!("duplicate collection id {}", c.id));
        }
        if !root_paths.contains(c.api_root.as_str()) {
            problem(
                at("api_root"),
                format!("names no configured API root: {:?}", c.api_root),
            );
        }
        if let Err(message) = check_title(&c.title) {
            problem(at("title"), message);
        }
        if !names.insert((c.api_root.as_str(), c.title.as_str())) {
            problem(
                at("title"),
                format!("duplicate title {:?} in API root {:?}", c.title, c.api_root),
            );
        }
        if let Some(alias) = &c.alias {
            if let Err(message) = check_title(alias) {
                problem(at("alias"), message);
            }
            if alias != &c.title && !names.insert((c.api_root.as_str(), alias.as_str())) {
                problem(
                    at("alias"),
                    format!(
                        "alias {alias:?} is already used in API root {:?}",
                        c.api_root
                    ),
                );
            }
        }
        let kind = match (&c.query, c.writable) {
            (Some(_), true) => {
                problem(
                    at("query"),
                    "a collection is either `writable` or has a `query`, not both".into(),
                );
                None
            }
            (None, false) => {
                problem(
                    at("query"),
                    "a collection needs a `query` or `writable = true`".into(),
                );
                None
            }
            (None, true) => Some(CollectionKind::Stored),
            (Some(text), false) => match Query::parse(text) {
                Ok(q) => Some(CollectionKind::Query(Arc::new(q))),
                Err(e) => {
                    problem(at("query"), e.to_string());
                    None
                }
            },
        };
        if !c.access.write.is_empty() && !c.writable {
            problem(
                at("access.write"),
                "only writable collections accept writes".into(),
            );
        }
        if let Some(kind) = kind {
            collections.push(CollectionConfig {
                settings: c.clone(),
                kind,
            });
        }
    }

    if problems.is_empty() {
        let trusted_proxies = config
            .service
            .trusted_proxies
            .iter()
            .filter_map(|p| parse_proxy(p))
            .collect();
        Ok(ServiceConfig {
            config,
            collections,
            trusted_proxies,
        })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// An IP address or CIDR range of a trusted proxy.
pub fn parse_proxy(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

fn check_path_segment(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 64
        && path
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1-64 characters of letters, digits, '-' or '_' (no '.' or '/'), got {path:?}"
        ))
    }
}

fn check_title(title: &str) -> Result<(), String> {
    if title.trim().is_empty() {
        return Err("must not be empty".into());
    }
    // XSOAR, OpenCTI and Google SecOps select collections by title and split on these.
    if title.contains('.') || title.contains(',') {
        return Err(format!("must not contain '.' or ',' (got {title:?})"));
    }
    Ok(())
}

/// Whether `s` is a lowercase, hyphenated UUID of version 4 (variant 1).
pub fn is_uuid_v4(s: &str) -> bool {
    match uuid::Uuid::try_parse(s) {
        Ok(u) => {
            u.get_version_num() == 4
                && u.get_variant() == uuid::Variant::RFC4122
                && u.hyphenated().to_string() == s
        }
        Err(_) => false,
    }
}
