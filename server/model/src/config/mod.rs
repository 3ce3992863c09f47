//! The configuration directory: loading and validation.
//!
//! `config/taxiway.toml` holds service settings, API roots and collections (no secrets);
//! an optional `config/collections.json` adds Cortex XSOAR's collections as they are
//! written there ([`xsoar`]).
//! A loaded configuration is validated as a whole and compiled (queries parsed) before it
//! replaces the one serving, so a broken change never reaches clients.
//!
//! - [`Config`]: the file as written (with its `[server]` and `[auth]` sections
//!   in [`server`] and [`auth`]);
//! - [`validate()`]: every rule, checked section by section, and the queries compiled
//!   into a [`ServiceConfig`] ([`CollectionConfig`]s, [`sources`] resolved);
//! - [`ConfigError`] / [`Problem`]: what is wrong, all at once.

pub mod auth;
mod collection;
mod error;
pub mod feeds;
mod model;
pub mod server;
mod service;
pub mod sources;
mod validate;
pub mod xsoar;

use std::path::{Path, PathBuf};

pub use self::auth::{AuthSettings, ClientCertUser};
pub use self::collection::{CollectionConfig, CollectionKind};
pub use self::error::{ConfigError, Problem};
pub use self::feeds::{Feed, FeedFormat};
pub use self::model::{
    Access, ApiRoot, Collection, Config, Limits, PostgresSettings, PostgresTls, QueryDialect,
    Service, StoreBackend, StoreSettings, TaxiiVersion,
};
pub use self::server::ServerSettings;
pub use self::service::ServiceConfig;
pub use self::validate::{
    is_collection_id, is_uuid_v4, parse_proxy, validate, validate_with_xsoar,
};
pub use self::xsoar::COLLECTIONS_FILE;

/// Name of the configuration file inside the config directory.
pub const CONFIG_FILE: &str = "taxiway.toml";

/// Read and validate the configuration in `dir`: `taxiway.toml`, and
/// `collections.json` when there is one.
pub fn load_dir(dir: &Path) -> Result<ServiceConfig, ConfigError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let json_path = dir.join(COLLECTIONS_FILE);
    let json = match std::fs::read_to_string(&json_path) {
        Ok(json) => Some(json),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: json_path,
                source,
            })
        }
    };
    parse_files(&text, json.as_deref()).map_err(|e| match e {
        ConfigError::Syntax { path: p, message } if p == Path::new(COLLECTIONS_FILE) => {
            ConfigError::Syntax {
                path: json_path,
                message,
            }
        }
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
    parse_files(text, None)
}

/// Parse and validate the text of `taxiway.toml` and, if there is one, of
/// `collections.json`, as one configuration (see [`validate_with_xsoar`]).
pub fn parse_files(
    taxiway_toml: &str,
    collections_json: Option<&str>,
) -> Result<ServiceConfig, ConfigError> {
    let config: Config = toml::from_str(taxiway_toml).map_err(|e| ConfigError::Syntax {
        path: PathBuf::from(CONFIG_FILE),
        message: syntax_message(taxiway_toml, &e),
    })?;
    let xsoar = match collections_json {
        Some(json) => xsoar::parse_collections(json).map_err(|e| ConfigError::Syntax {
            path: PathBuf::from(COLLECTIONS_FILE),
            message: e.to_string(),
        })?,
        None => Vec::new(),
    };
    validate_with_xsoar(config, xsoar)
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
