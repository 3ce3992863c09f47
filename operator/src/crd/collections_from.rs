//! `TaxiiService.spec.collectionsFrom`: collections defined in an XSOAR "TAXII2 Server"
//! collections JSON held by a ConfigMap, and what the operator made of them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The ConfigMap key read when `collectionsFrom.key` is not given.
pub const DEFAULT_COLLECTIONS_KEY: &str = "collections.json";

/// A ConfigMap key holding Cortex XSOAR's collections JSON, as pasted from the
/// integration: `{"name": "<query>"}` or `{"name": {"query": "…", "description": "…"}}`.
/// Each name becomes a query collection with that title; its XSOAR query is translated
/// to the native query language (see docs/migrating.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionsFromSpec {
    /// The ConfigMap (same namespace), e.g. from
    /// `kubectl create configmap xsoar --from-file=collections.json`.
    #[schemars(length(min = 1))]
    pub config_map_name: String,
    /// The key holding the JSON.
    #[serde(default = "default_key")]
    #[schemars(length(min = 1))]
    pub key: String,
    /// The API root the collections are served in; defaults to the service's default
    /// API root. Collection ids derive from it and the name, so keep it stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_root: Option<String>,
    /// Who may read these collections (user names or `group:<name>`); empty means
    /// every signed-in user, as an XSOAR instance with one credential served everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// The writable collections these collections draw from: names of TaxiiCollections
    /// of the service (or collection ids, titles, aliases), as a TaxiiCollection's
    /// `sources`. XSOAR served every indicator; here, unless named, a query collection
    /// draws only from writable collections all its readers may read anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

fn default_key() -> String {
    DEFAULT_COLLECTIONS_KEY.to_string()
}

/// What became of `spec.collectionsFrom`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionsFromStatus {
    /// `ConfigMap/KEY` as read.
    pub source: String,
    /// Collections served from it.
    #[serde(default)]
    pub served: i32,
    /// Why the JSON as a whole could not be used (missing ConfigMap or key, invalid
    /// JSON); the collections served before keep being served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One entry per collection named in the JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<JsonCollectionStatus>,
}

/// One collection of the JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonCollectionStatus {
    /// Its name in the JSON (the collection title).
    pub name: String,
    /// The TAXII collection id, derived from the API root and the name.
    pub id: String,
    /// The query served, in the native query language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The collection's URL when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why it is not served (or serves its previous query); `None` when it is served
    /// as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
