//! The settings sections: `[service]`, `[limits]`, `[server]` and `[store]`.

use super::values::parse_proxy;
use crate::config::error::Problem;
use crate::config::model::{Limits, PostgresSettings, Service, StoreBackend, StoreSettings};
use crate::config::server::ServerSettings;

/// `[service]`: a title, at least one version, an absolute external URL, proxies that
/// parse. (`default_api_root` is checked with the API roots it names.)
pub(super) fn service(service: &Service) -> Vec<Problem> {
    let mut problems = Vec::new();
    if service.title.trim().is_empty() {
        problems.push(Problem::new("service.title", "must not be empty"));
    }
    if service.versions.is_empty() {
        problems.push(Problem::new(
            "service.versions",
            "at least one TAXII version (\"2.1\" or \"2.0\") must be served",
        ));
    }
    if let Some(url) = &service.external_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(Problem::new(
                "service.external_url",
                format!("must be an absolute http(s) URL, got {url:?}"),
            ));
        }
    }
    for (i, proxy) in service.trusted_proxies.iter().enumerate() {
        if parse_proxy(proxy).is_none() {
            problems.push(Problem::new(
                format!("service.trusted_proxies[{i}]"),
                format!("must be an IP address or CIDR range like 10.0.0.0/8, got {proxy:?}"),
            ));
        }
    }
    problems
}

/// `[limits]`: page sizes that make sense together, byte limits a STIX object fits in.
pub(super) fn limits(limits: &Limits) -> Vec<Problem> {
    let mut problems = Vec::new();
    if limits.max_page_size == 0 {
        problems.push(Problem::new("limits.max_page_size", "must be > 0"));
    }
    if limits.default_page_size == 0 || limits.default_page_size > limits.max_page_size {
        problems.push(Problem::new(
            "limits.default_page_size",
            "must be > 0 and <= max_page_size",
        ));
    }
    if limits.max_content_length == 0 {
        problems.push(Problem::new("limits.max_content_length", "must be > 0"));
    }
    // Below a kilobyte no real STIX object fits: a typo, not a policy.
    for (field, value) in [
        ("max_page_bytes", limits.max_page_bytes),
        ("max_object_bytes", limits.max_object_bytes),
    ] {
        if value < 1024 {
            problems.push(Problem::new(
                format!("limits.{field}"),
                format!("must be at least 1024 (bytes), got {value}"),
            ));
        }
    }
    problems
}

/// `[server]`: the listener's own rules ([`ServerSettings::problems`]).
pub(super) fn server(server: &ServerSettings) -> Vec<Problem> {
    server
        .problems()
        .into_iter()
        .map(|(field, message)| Problem::new(format!("server.{field}"), message))
        .collect()
}

/// `[store]`: retention TAXII allows, a refresh interval, and `[store.postgres]`
/// exactly when the backend is PostgreSQL.
pub(super) fn store(store: &StoreSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    if store.status_retention_hours < 24 {
        problems.push(Problem::new(
            "store.status_retention_hours",
            "TAXII requires status resources to be kept at least 24 hours",
        ));
    }
    if store.refresh_interval_secs == 0 {
        problems.push(Problem::new("store.refresh_interval_secs", "must be > 0"));
    }
    match (&store.backend, &store.postgres) {
        (StoreBackend::Postgres, None) => problems.push(Problem::new(
            "store.postgres",
            "required when store.backend = \"postgres\"",
        )),
        (StoreBackend::Sqlite, Some(_)) => problems.push(Problem::new(
            "store.postgres",
            "only allowed when store.backend = \"postgres\"",
        )),
        (StoreBackend::Postgres, Some(pg)) => problems.extend(postgres(pg)),
        (StoreBackend::Sqlite, None) => {}
    }
    problems
}

/// `[store.postgres]`: one source of the URL, a sane pool and timeout, a CA file name.
fn postgres(pg: &PostgresSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    match (&pg.secret_dir, &pg.url_env) {
        (Some(_), Some(_)) | (None, None) => problems.push(Problem::new(
            "store.postgres",
            "set exactly one of secret_dir and url_env",
        )),
        (_, Some(var)) if var.trim().is_empty() => {
            problems.push(Problem::new("store.postgres.url_env", "must not be empty"))
        }
        _ => {}
    }
    if pg.pool_size == 0 || pg.pool_size > 1000 {
        problems.push(Problem::new(
            "store.postgres.pool_size",
            "must be between 1 and 1000",
        ));
    }
    if pg.connect_timeout_secs == 0 {
        problems.push(Problem::new(
            "store.postgres.connect_timeout_secs",
            "must be > 0",
        ));
    }
    if matches!(&pg.ca_file, Some(f) if f.as_os_str().is_empty()) {
        problems.push(Problem::new("store.postgres.ca_file", "must not be empty"));
    }
    problems
}
