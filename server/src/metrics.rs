//! Prometheus metrics, served on the admin listener.

mod feeds;
mod page_cache;

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::StoreStats;

pub use self::feeds::FeedMetrics;
pub use self::page_cache::PageCacheCounters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabels {
    collection: String,
}

/// One configured collection's requests: the labels are bounded by the
/// configuration (API roots and collection ids), never by callers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionRequestLabels {
    api_root: String,
    collection: String,
    endpoint: &'static str,
    status_class: &'static str,
}

/// One configured collection's objects, by direction (`served` or `accepted`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionObjectLabels {
    api_root: String,
    collection: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubjectLabels {
    subject: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabels {
    field: &'static str,
}

/// A response's content coding: `identity`, `gzip` or `zstd`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EncodingLabels {
    encoding: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    objects: Family<ResultLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    auth_failures: Family<ReasonLabels, Counter>,
    lockouts: Family<SubjectLabels, Counter>,
    verifications: Counter,
    credential_reloads: Family<ResultLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    tls_expiry: Gauge,
    collection_requests: Family<CollectionRequestLabels, Counter>,
    collection_objects: Family<CollectionObjectLabels, Counter>,
    users: Gauge,
    object_versions: Gauge,
    collection_entries: Family<CollectionLabels, Gauge>,
    rebuilding: Gauge,
    connections_open: Gauge,
    connections_refused: Counter,
    limited: Family<ReasonLabels, Counter>,
    ignored_match_fields: Family<FieldLabels, Counter>,
    response_encodings: Family<EncodingLabels, Counter>,
    response_body_bytes: Family<EncodingLabels, Counter>,
    compression_saved_bytes: Family<EncodingLabels, Counter>,
    feeds: FeedMetrics,
    page_cache: PageCacheCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("taxiway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "TAXII requests by endpoint, method and status",
            requests.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "TAXII request latency",
            latency.clone(),
        );
        let objects = Family::<ResultLabels, Counter>::default();
        registry.register(
            "objects_added",
            "Objects posted, by result (stored or rejected)",
            objects.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result (ok or error)",
            reloads.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Refused authentications by reason",
            auth_failures.clone(),
        );
        let lockouts = Family::<SubjectLabels, Counter>::default();
        registry.register(
            "auth_lockouts",
            "Temporary lockouts started after repeated failures, by subject (user or address)",
            lockouts.clone(),
        );
        let verifications = Counter::default();
        registry.register(
            "auth_verifications",
            "Slow (argon2) credential verifications: credentials not yet verified",
            verifications.clone(),
        );
        let credential_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "credentials_reloads",
            "Credentials directory reloads by result (ok or error)",
            credential_reloads.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS directory reloads by result (ok or error)",
            tls_reloads.clone(),
        );
        let tls_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the TLS certificate being served expires (its notAfter), in Unix seconds; 0 without TLS",
            tls_expiry.clone(),
        );
        let collection_requests = Family::<CollectionRequestLabels, Counter>::default();
        registry.register(
            "collection_requests",
            "TAXII requests naming a configured collection, by API root, collection, endpoint and status class (2xx, 4xx, ...)",
            collection_requests.clone(),
        );
        let collection_objects = Family::<CollectionObjectLabels, Counter>::default();
        registry.register(
            "collection_objects",
            "Objects of a configured collection served in pages or accepted from POSTs, by API root, collection and direction (served or accepted)",
            collection_objects.clone(),
        );
        let users = Gauge::default();
        registry.register("users", "Users configured", users.clone());
        let object_versions = Gauge::default();
        registry.register(
            "object_versions",
            "Object versions in the store",
            object_versions.clone(),
        );
        let collection_entries = Family::<CollectionLabels, Gauge>::default();
        registry.register(
            "collection_entries",
            "Object versions per collection",
            collection_entries.clone(),
        );
        let rebuilding = Gauge::default();
        registry.register(
            "query_rebuilds_in_progress",
            "Query collections being rebuilt",
            rebuilding.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "TAXII connections being served",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "TAXII connections closed unserved because server.max_connections were open",
            connections_refused.clone(),
        );
        let limited = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "limited_requests",
            "Requests answered by a limit, by reason (per_client: 429, body_timeout: 408, timeout: 503, header_bytes: 431)",
            limited.clone(),
        );
        let ignored_match_fields = Family::<FieldLabels, Counter>::default();
        registry.register(
            "ignored_match_fields",
            "match[<field>] parameters ignored on listings because the server does not support the field, by field (a few known names, else other)",
            ignored_match_fields.clone(),
        );
        let response_encodings = Family::<EncodingLabels, Counter>::default();
        registry.register(
            "response_encodings",
            "TAXII responses by the content coding they were sent in (identity, gzip, zstd)",
            response_encodings.clone(),
        );
        let response_body_bytes = Family::<EncodingLabels, Counter>::default();
        registry.register(
            "response_body_bytes",
            "Bytes of TAXII response bodies as sent on the wire (after content coding), by content coding",
            response_body_bytes.clone(),
        );
        let compression_saved_bytes = Family::<EncodingLabels, Counter>::default();
        registry.register(
            "compression_saved_bytes",
            "Bytes content coding kept off the wire (identity length minus coded length), by content coding (gzip, zstd)",
            compression_saved_bytes.clone(),
        );
        let feeds = FeedMetrics::register(&mut registry);
        let page_cache = PageCacheCounters::default();
        registry.register(
            "page_cache_hits",
            "Full objects pages served from the page cache",
            page_cache.hits.clone(),
        );
        registry.register(
            "page_cache_misses",
            "Objects pages looked up in the page cache and read from the store",
            page_cache.misses.clone(),
        );
        registry.register(
            "page_cache_evictions",
            "Pages dropped from the page cache to stay within page_cache_bytes",
            page_cache.evictions.clone(),
        );
        registry.register(
            "page_cache_bytes",
            "Bytes the cached pages count against page_cache_bytes (their coded forms included)",
            page_cache.bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            objects,
            reloads,
            auth_failures,
            lockouts,
            verifications,
            credential_reloads,
            tls_reloads,
            tls_expiry,
            collection_requests,
            collection_objects,
            users,
            object_versions,
            collection_entries,
            rebuilding,
            connections_open,
            connections_refused,
            limited,
            ignored_match_fields,
            response_encodings,
            response_body_bytes,
            compression_saved_bytes,
            feeds,
            page_cache,
        }
    }

    /// The page cache's counters (`taxiway_page_cache_*`).
    pub fn page_cache(&self) -> &PageCacheCounters {
        &self.page_cache
    }

    /// Record one TAXII response sent in the content coding `encoding` (`identity`,
    /// `gzip`, `zstd`): `identity_bytes` its body before coding, `sent_bytes` on the wire.
    pub fn response_encoding(&self, encoding: &'static str, identity_bytes: u64, sent_bytes: u64) {
        let labels = EncodingLabels { encoding };
        self.response_encodings.get_or_create(&labels).inc();
        self.response_body_bytes
            .get_or_create(&labels)
            .inc_by(sent_bytes);
        if encoding != "identity" {
            self.compression_saved_bytes
                .get_or_create(&labels)
                .inc_by(identity_bytes.saturating_sub(sent_bytes));
        }
    }

    /// The `taxiway_feed_*` metrics.
    pub fn feeds(&self) -> &FeedMetrics {
        &self.feeds
    }

    /// A listing request named a `match[<field>]` the server ignores.
    pub fn ignored_match_field(&self, field: &'static str) {
        self.ignored_match_fields
            .get_or_create(&FieldLabels { field })
            .inc();
    }

    /// A connection started being served.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// A served connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was closed unserved: too many were open.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// A request was answered by a limit (`per_client`, `body_timeout`, `timeout`).
    pub fn limited(&self, reason: &'static str) {
        self.limited.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Record one request.
    pub fn observe_request(
        &self,
        endpoint: &'static str,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Record the outcome of an add-objects request.
    pub fn objects_added(&self, stored: u64, rejected: u64) {
        self.objects
            .get_or_create(&ResultLabels { result: "stored" })
            .inc_by(stored);
        self.objects
            .get_or_create(&ResultLabels { result: "rejected" })
            .inc_by(rejected);
    }

    /// Record a configuration reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Record a refused authentication.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Record a lockout of a `user` or an `address`.
    pub fn lockout(&self, subject: &'static str) {
        self.lockouts
            .get_or_create(&SubjectLabels { subject })
            .inc();
    }

    /// Record one slow credential verification.
    pub fn verification(&self) {
        self.verifications.inc();
    }

    /// Record a credentials reload.
    pub fn credentials_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.credential_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Record a TLS reload.
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.tls_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Set when the TLS certificate being served expires (Unix seconds).
    pub fn tls_certificate_expiry(&self, not_after: i64) {
        self.tls_expiry.set(not_after);
    }

    /// Record one request naming the configured collection `collection` of
    /// `api_root` (callers check it is configured: the labels stay bounded).
    pub fn collection_request(
        &self,
        api_root: &str,
        collection: &str,
        endpoint: &'static str,
        status: u16,
    ) {
        self.collection_requests
            .get_or_create(&CollectionRequestLabels {
                api_root: api_root.to_string(),
                collection: collection.to_string(),
                endpoint,
                status_class: status_class(status),
            })
            .inc();
    }

    /// Record objects `served` in a page or `accepted` from a POST for the
    /// configured collection `collection` of `api_root`.
    pub fn collection_objects(
        &self,
        api_root: &str,
        collection: &str,
        direction: &'static str,
        objects: u64,
    ) {
        self.collection_objects
            .get_or_create(&CollectionObjectLabels {
                api_root: api_root.to_string(),
                collection: collection.to_string(),
                direction,
            })
            .inc_by(objects);
    }

    /// Set the number of configured users.
    pub fn users(&self, n: usize) {
        self.users.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Prometheus text exposition, with store figures refreshed.
    pub fn render(&self, stats: Option<StoreStats>) -> String {
        if let Some(stats) = stats {
            self.object_versions.set(stats.object_versions as i64);
            self.rebuilding.set(stats.rebuilding as i64);
            self.collection_entries.clear();
            for c in stats.collections {
                self.collection_entries
                    .get_or_create(&CollectionLabels {
                        collection: c.collection,
                    })
                    .set(c.entries as i64);
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// `2xx`, `4xx`, ...: the class of an HTTP status, for bounded labels.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}
