//! The service-level part of the configuration: service, limits, store, auth, API roots.

use std::num::NonZeroU64;

use taxiway_model::config::{
    self as server_config, ApiRoot, Config, ConfigError, Limits, PostgresSettings, PostgresTls,
    ServerSettings, Service, StoreBackend, StoreSettings,
};
use taxiway_model::config::{AuthSettings, ClientCertUser as ServerClientCertUser};

use super::Urls;
use crate::crd::{
    AuthSpec, ClientCertUser, GatewayScheme, PostgresSpec, PostgresTlsMode, StorageType,
    TaxiiService, TaxiiVersion,
};
use crate::reconcile::service::build::{DATABASE_CA_DIR, DATABASE_DIR};

/// Seconds a server pod keeps serving (not ready) after SIGTERM when it has peers, so
/// the Service stops sending it connections before it closes its listener.
pub const SHUTDOWN_DELAY_SECS: u64 = 5;

/// `spec.externalUrl`, else the Ingress host (https when the Ingress has TLS), else the
/// Gateway route's first host name (with its scheme).
pub(super) fn external_url(service: &TaxiiService) -> Option<String> {
    let spec = &service.spec;
    if let Some(url) = &spec.external_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    if spec.ingress.is_none() {
        if let Some(gateway) = &spec.gateway {
            return gateway.hostnames.first().map(|host| {
                let scheme = match gateway.scheme {
                    GatewayScheme::Https => "https",
                    GatewayScheme::Http => "http",
                };
                format!("{scheme}://{host}{}", gateway.path.trim_end_matches('/'))
            });
        }
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
pub(super) fn base_config(service: &TaxiiService, urls: &Urls) -> Config {
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
        limits.page_cache_bytes = size(l.page_cache_bytes, limits.page_cache_bytes);
    }
    let mut store = StoreSettings::default();
    if let Some(secs) = spec.storage.refresh_interval_seconds {
        store.refresh_interval_secs = secs;
    }
    if let Some(hours) = spec.storage.status_retention_hours {
        store.status_retention_hours = hours;
    }
    let mut server = ServerSettings::default();
    if spec.storage.type_ == StorageType::Postgres {
        store.backend = StoreBackend::Postgres;
        // Missing `postgres`: left unset, so the server's validator names the field.
        store.postgres = spec.storage.postgres.as_ref().map(postgres_settings);
    }
    if let Some(l) = &spec.limits {
        let count = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        if let Some(n) = l.max_connections {
            server.max_connections = count(n);
        }
        if let Some(n) = l.max_requests_per_client {
            server.max_requests_per_client = count(n);
        }
        if let Some(secs) = l.request_timeout_seconds {
            server.request_timeout_secs = secs;
        }
        if let Some(secs) = l.idle_timeout_seconds {
            server.idle_timeout_secs = secs;
        }
    }
    server.shutdown_delay_secs = shutdown_delay_secs(service);
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
        // Connection limits and timeouts apply on pod restart; the defaults suit a pod.
        server,
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
        // Added by `admit_feeds`, after the collections they store into.
        feeds: vec![],
    }
}

/// Seconds a pod keeps serving after SIGTERM: `limits.shutdownDelaySeconds`, else
/// [`SHUTDOWN_DELAY_SECS`] when replicas share PostgreSQL and 0 on the embedded store.
pub fn shutdown_delay_secs(service: &TaxiiService) -> u64 {
    let spec = &service.spec;
    spec.limits
        .as_ref()
        .and_then(|l| l.shutdown_delay_seconds)
        .unwrap_or(match spec.storage.type_ {
            StorageType::Postgres => SHUTDOWN_DELAY_SECS,
            StorageType::Embedded => 0,
        })
}

/// `[store.postgres]`: the mounted Secret's directory, never its contents.
fn postgres_settings(spec: &PostgresSpec) -> PostgresSettings {
    let tls = match spec.tls {
        PostgresTlsMode::Disable => PostgresTls::Disable,
        PostgresTlsMode::Require => PostgresTls::Require,
        PostgresTlsMode::VerifyFull => PostgresTls::VerifyFull,
    };
    let ca_file = (spec.ca_secret_name.is_some() && tls == PostgresTls::VerifyFull)
        .then(|| std::path::Path::new(DATABASE_CA_DIR).join("ca.crt"));
    PostgresSettings {
        secret_dir: Some(DATABASE_DIR.into()),
        url_env: None,
        pool_size: spec.pool_size.map_or(16, |n| n as usize),
        tls,
        ca_file,
        connect_timeout_secs: 5,
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
pub(super) fn service_problems(error: ConfigError) -> Vec<String> {
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
        .replace("store.postgres.pool_size", "storage.postgres.poolSize")
        .replace("store.postgres", "storage.postgres")
        .replace("server.max_connections", "limits.maxConnections")
        .replace(
            "server.max_requests_per_client",
            "limits.maxRequestsPerClient",
        )
        .replace(
            "server.request_timeout_secs",
            "limits.requestTimeoutSeconds",
        )
        .replace("server.idle_timeout_secs", "limits.idleTimeoutSeconds")
        .replace("server.shutdown_delay_secs", "limits.shutdownDelaySeconds")
        .replace("max_page_size", "maxPageSize")
        .replace("default_page_size", "defaultPageSize")
        .replace("max_content_length", "maxContentLength")
        .replace("page_cache_bytes", "pageCacheBytes")
}
