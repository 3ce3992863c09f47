//! The configuration directory: loading, validation and hot reload.
//!
//! `config/taxiway.toml` holds service settings, API roots and collections (no secrets).
//! A loaded configuration is validated as a whole and compiled (queries parsed) before it
//! replaces the one serving, so a broken change never reaches clients.

mod model;
pub mod sources;

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
    /// Query collections: ids of the writable collections the query draws from, in
    /// configuration order (resolved from `sources`, or the safe default). Empty for
    /// writable collections.
    pub sources: Vec<String>,
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

    /// What is allowed but probably not meant: a query collection readable more widely
    /// than a collection it draws from (it republishes that collection's objects), a
    /// writable collection left out of a query collection's default sources, a writable
    /// collection nobody may write to. Shown by `check-config`, logged at load and
    /// reported on TaxiiCollection status.
    pub fn warnings(&self) -> Vec<Problem> {
        sources::warnings(self)
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

/// A TOML error as `line L, column C: message`, without quoting the offending line
/// (it might hold a secret pasted into the wrong file, such as a database URL).
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = redact_urls(&e.message().trim_end().replace('\n', " "));
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("TOML parse error at line {line}, column {column}: {message}")
        }
        None => format!("TOML parse error: {message}"),
    }
}

/// Replace every `postgres://…` / `postgresql://…` in `text` by `postgres://<redacted>`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["postgres://", "postgresql://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        out.push_str(&rest[..at]);
        out.push_str("postgres://<redacted>");
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Parse and validate configuration text.
pub fn parse(text: &str) -> Result<ServiceConfig, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: PathBuf::from(CONFIG_FILE),
        message: syntax_message(text, &e),
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
    // Below a kilobyte no real STIX object fits: a typo, not a policy.
    for (field, value) in [
        ("max_page_bytes", limits.max_page_bytes),
        ("max_object_bytes", limits.max_object_bytes),
    ] {
        if value < 1024 {
            problem(
                format!("limits.{field}"),
                format!("must be at least 1024 (bytes), got {value}"),
            );
        }
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
            if matches!(&pg.ca_file, Some(f) if f.as_os_str().is_empty()) {
                problem("store.postgres.ca_file".into(), "must not be empty".into());
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
        if c.sources.is_some() && c.writable {
            problem(
                at("sources"),
                "only query collections draw from sources".into(),
            );
        }
        if let Some(kind) = kind {
            collections.push(CollectionConfig {
                settings: c.clone(),
                kind,
                sources: Vec::new(),
            });
        }
    }
    for (i, sources) in sources::resolve(&collections).into_iter().enumerate() {
        match sources {
            Ok(ids) => collections[i].sources = ids,
            Err(errors) => {
                let index = config
                    .collections
                    .iter()
                    .position(|c| c.id == collections[i].settings.id)
                    .unwrap_or(i);
                for message in errors {
                    problem(format!("collections[{index}].sources"), message);
                }
            }
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

#[cfg(test)]
mod store_settings_tests {
    use super::*;

    fn with_store(store: &str) -> Result<ServiceConfig, ConfigError> {
        parse(&format!(
            "[service]\ntitle = \"t\"\n\n{store}\n\n[[api_roots]]\npath = \"feeds\"\ntitle = \"Feeds\"\n"
        ))
    }

    fn problems(store: &str) -> Vec<String> {
        match with_store(store) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn sqlite_is_the_default_and_postgres_needs_its_section() {
        let c = with_store("").expect("valid");
        assert_eq!(c.config.store.backend, StoreBackend::Sqlite);
        assert!(c.config.store.postgres.is_none());
        let p = problems("[store]\nbackend = \"postgres\"");
        assert!(p.iter().any(|p| p.contains("store.postgres")), "{p:?}");
        let p = problems("[store.postgres]\nurl_env = \"X\"");
        assert!(p.iter().any(|p| p.contains("only allowed")), "{p:?}");
    }

    #[test]
    fn the_postgres_section_as_documented() {
        let c = with_store(
            "[store]\nbackend = \"postgres\"\nrefresh_interval_secs = 60\nstatus_retention_hours = 48\n\
             [store.postgres]\nsecret_dir = \"/var/run/taxiway/database\"\npool_size = 16\n\
             tls = \"verify-full\"\nca_file = \"/etc/ca.pem\"\nconnect_timeout_secs = 5",
        )
        .expect("valid");
        let pg = c.config.store.postgres.expect("postgres");
        assert_eq!(pg.pool_size, 16);
        assert_eq!(pg.tls, PostgresTls::VerifyFull);
        let defaults =
            with_store("[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = \"U\"")
                .expect("valid")
                .config
                .store
                .postgres
                .expect("postgres");
        assert_eq!(defaults.pool_size, 16);
        assert_eq!(defaults.connect_timeout_secs, 5);
        assert_eq!(defaults.tls, PostgresTls::VerifyFull);
        for tls in ["disable", "require"] {
            with_store(&format!(
                "[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = \"U\"\ntls = \"{tls}\""
            ))
            .expect("valid");
        }
    }

    #[test]
    fn exactly_one_source_and_sane_numbers() {
        let both = problems(
            "[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = \"U\"\nsecret_dir = \"/s\"",
        );
        assert!(both.iter().any(|p| p.contains("exactly one")), "{both:?}");
        let none = problems("[store]\nbackend = \"postgres\"\n[store.postgres]\npool_size = 4");
        assert!(none.iter().any(|p| p.contains("exactly one")), "{none:?}");
        let zero = problems(
            "[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = \"U\"\npool_size = 0",
        );
        assert!(zero.iter().any(|p| p.contains("pool_size")), "{zero:?}");
        // A CA with another mode is accepted (and unused): the operator may always mount one.
        let ca = problems(
            "[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = \"U\"\ntls = \"require\"\nca_file = \"/c\"",
        );
        assert!(ca.is_empty(), "{ca:?}");
        let unknown = problems(
            "[store]\nbackend = \"postgres\"\n[store.postgres]\nurl = \"postgres://u:pw@h/db\"",
        );
        assert!(!unknown.is_empty());
        assert!(
            unknown.iter().all(|p| !p.contains("pw@h")),
            "a URL put in the config by mistake is not echoed: {unknown:?}"
        );
        let typed = problems("[store]\nbackend = \"postgres\"\n[store.postgres]\nurl_env = 5\nsecret_dir = \"postgres://u:pw@h/db\"\npool_size = \"postgres://u:pw@h/db\"");
        assert!(!typed.is_empty());
        assert!(typed.iter().all(|p| !p.contains("pw@h")), "{typed:?}");
        let bad = problems("[store]\nbackend = \"mysql\"");
        assert!(!bad.is_empty());
    }

    #[test]
    fn page_and_object_byte_limits() {
        let c = with_store("").expect("valid");
        assert_eq!(c.config.limits.max_page_bytes, 16 * 1024 * 1024);
        assert_eq!(c.config.limits.max_object_bytes, 1024 * 1024);
        let set = with_store(
            "[limits]
max_page_bytes = 4096
max_object_bytes = 2048",
        )
        .expect("valid");
        assert_eq!(set.config.limits.max_page_bytes, 4096);
        assert_eq!(set.config.limits.max_object_bytes, 2048);
        let p = problems(
            "[limits]
max_page_bytes = 0
max_object_bytes = 10",
        );
        assert!(
            p.iter().any(|p| p.contains("limits.max_page_bytes")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("limits.max_object_bytes")),
            "{p:?}"
        );
    }
}
