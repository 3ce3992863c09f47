//! `TaxiiFeed`: an upstream TAXII collection, STIX bundle or IOC list a `TaxiiService`
//! pulls into one of its writable TaxiiCollections on a schedule (the server's
//! `[[feeds]]`, see docs/feeds.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A feed: what to pull, from where, with which credentials, into which collection.
// kube's `printcolumn(...)` repeats `type_` per column, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taxiway.dev",
    version = "v1alpha1",
    kind = "TaxiiFeed",
    plural = "taxiifeeds",
    singular = "taxiifeed",
    shortname = "taxiifeed",
    shortname = "tfeed",
    category = "taxiway",
    namespaced,
    status = "TaxiiFeedStatus",
    doc = "A feed a TaxiiService pulls into one of its writable collections on a schedule.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Into", type_ = "string", json_path = ".spec.into"),
    printcolumn(name = "Format", type_ = "string", json_path = ".spec.format"),
    printcolumn(name = "Interval", type_ = "string", json_path = ".spec.interval"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        json_path = ".status.lastSuccessTime"
    ),
    printcolumn(
        name = "Stored",
        type_ = "integer",
        json_path = ".status.objectsStored"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url", priority = 1),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiFeedSpec {
    /// The `TaxiiService` (same namespace) that runs the feed.
    #[schemars(length(min = 1))]
    pub service: String,
    /// The writable TaxiiCollection (its `metadata.name`, same service) the feed stores
    /// into. Objects are stored as an authenticated POST by the user `feed:<name>`
    /// would be: query collections drawing from it see them.
    #[schemars(length(min = 1))]
    pub into: String,
    /// A TAXII discovery or API root URL (`format: taxii`), or the URL of the list or
    /// bundle. No credentials in it: use `credentials`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// What `url` serves: `taxii` (2.1 or 2.0, negotiated), `stix-bundle`, `lines` (one
    /// IP, CIDR, domain, URL or hash per line) or `csv`.
    #[serde(default)]
    pub format: FeedFormat,
    /// TAXII only: the upstream collection, by id or title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Time between two pulls, as a duration: `90s`, `15m`, `1h30m` (at least 10s).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    pub interval: String,
    /// Seconds one upstream request may take (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
    /// TAXII only: objects asked for per page (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub page_size: Option<u64>,
    /// Largest response body accepted, in bytes (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_response_bytes: Option<u64>,
    /// Credentials for the upstream, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<FeedCredentials>,
    /// A Secret (same namespace) whose `ca.crt` the upstream's certificate must chain
    /// to, instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_name: Option<String>,
    /// A `kubernetes.io/tls` Secret (same namespace) presented to the upstream as the
    /// client certificate (`tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_name: Option<String>,
    /// Keep only objects of these STIX types (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_types: Vec<String>,
    /// `csv` only: the 1-based column holding the indicator value (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub csv_column: Option<u64>,
    /// `lines`/`csv`: `labels` of the indicators made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `lines`/`csv`: `confidence` (0-100) of the indicators made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub confidence: Option<u8>,
    /// `lines`/`csv`: the TLP marking of the indicators made (`clear`, `green`,
    /// `amber`, `amber+strict`, `red`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<String>,
}

/// What a feed's URL serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    /// A TAXII 2.1 or 2.0 server.
    #[default]
    Taxii,
    /// A STIX bundle (or anything with an `objects` array).
    StixBundle,
    /// One indicator per line; `#` starts a comment.
    Lines,
    /// CSV with the indicator in one column (`csvColumn`).
    Csv,
}

/// Where the upstream's credentials are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedCredentials {
    /// A Secret (same namespace): `kubernetes.io/basic-auth` (`username`, `password`:
    /// HTTP basic authentication), or any Secret with an `api-key` key (sent as
    /// `Authorization: Bearer <key>`, or in `apiKeyHeader`).
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// The header carrying the API key as is (e.g. `X-API-Key`) instead of
    /// `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
}

fn default_interval() -> String {
    "15m".into()
}

/// Why `spec.interval` cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.interval {0:?} is not a duration such as 90s, 15m or 1h30m")]
pub struct InvalidInterval(pub String);

/// `spec.interval` in seconds: hours, minutes and seconds in that order, each optional
/// but not all absent (`1h30m`, `15m`, `90s`).
pub fn interval_seconds(text: &str) -> Result<u64, InvalidInterval> {
    let invalid = || InvalidInterval(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    for (unit, factor) in [('h', 3600u64), ('m', 60), ('s', 1)] {
        let Some(end) = rest.find(|c: char| !c.is_ascii_digit()) else {
            return Err(invalid());
        };
        if end == 0 || !rest[end..].starts_with(unit) {
            continue;
        }
        let n: u64 = rest[..end].parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(factor)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        rest = &rest[end + 1..];
        if rest.is_empty() {
            return Ok(total);
        }
    }
    Err(invalid())
}

/// What the operator decided and what the server reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiFeedStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (rendered into its service's configuration), `Ready` (the last pull
    /// succeeded), `Syncing` (a pull runs now) and `Degraded` (the last pull failed:
    /// the upstream's error).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the last pull finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// When a pull last succeeded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<String>,
    /// Objects stored by every pull so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_stored: Option<i64>,
    /// Pulls that failed in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_kubernetes_durations() {
        for (text, secs) in [
            ("15m", 900),
            ("90s", 90),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h0m10s", 3610),
            ("2m30s", 150),
        ] {
            assert_eq!(interval_seconds(text), Ok(secs), "{text}");
        }
        for bad in [
            "",
            "15",
            "m",
            "1d",
            "15m1h",
            "1h1h",
            "-5m",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert!(interval_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minimal_feed_defaults_to_taxii_every_fifteen_minutes() {
        let spec: TaxiiFeedSpec = serde_json::from_value(serde_json::json!({
            "service": "hub", "into": "inbox", "url": "https://partner.example/taxii2/"
        }))
        .expect("parse");
        assert_eq!(spec.format, FeedFormat::Taxii);
        assert_eq!(spec.interval, "15m");
        let bundle: TaxiiFeedSpec = serde_json::from_value(serde_json::json!({
            "service": "hub", "into": "inbox", "url": "https://x/b.json", "format": "stix-bundle",
            "credentials": {"secretName": "partner", "apiKeyHeader": "X-API-Key"}
        }))
        .expect("parse");
        assert_eq!(bundle.format, FeedFormat::StixBundle);
        assert_eq!(
            bundle.credentials.map(|c| c.api_key_header),
            Some(Some("X-API-Key".into()))
        );
    }
}
