//! `TaxiiCollection`: a collection served by a `TaxiiService`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A TAXII collection: a saved query over the store (read-only) or a writable inbox
/// producers POST to, served by the `TaxiiService` named in `service`.
// kube's `printcolumn(...)` repeats `type_` per column, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taxiway.dev",
    version = "v1alpha1",
    kind = "TaxiiCollection",
    plural = "taxiicollections",
    singular = "taxiicollection",
    shortname = "taxiicol",
    shortname = "tcol",
    category = "taxiway",
    namespaced,
    status = "TaxiiCollectionStatus",
    doc = "A TAXII collection: a saved query (read-only view) or a writable inbox.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Query", type_ = "string", json_path = ".spec.query"),
    printcolumn(name = "Writable", type_ = "boolean", json_path = ".spec.writable"),
    printcolumn(name = "ID", type_ = "string", json_path = ".status.id"),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"QueryValid\")].status"
    ),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiCollectionSpec {
    /// The `TaxiiService` (same namespace) serving this collection.
    #[schemars(length(min = 1))]
    pub service: String,
    /// Pins the TAXII collection id (a lowercase UUIDv4, or a UUIDv5 such as an id kept
    /// from XSOAR) so clients configured with it keep
    /// working after the resource is re-created; defaults to `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[45][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ))]
    pub id: Option<String>,
    /// Title, unique per API root, without `.` or `,`; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^.,]+$"))]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alias, unique per API root, without `.` or `,`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^.,]+$"))]
    pub alias: Option<String>,
    /// The API root (its `path`); defaults to the service's default API root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_root: Option<String>,
    /// The query selecting stored objects (a read-only collection); see
    /// docs/query-language.md. Exactly one of `query` and `writable: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The language `query` is written in: `native` (default) or `xsoar` (Cortex XSOAR
    /// indicator queries, translated once to the native language; the translation is
    /// shown in `status.query`).
    #[serde(default, skip_serializing_if = "QueryDialect::is_native")]
    pub dialect: QueryDialect,
    /// A stored collection producers POST objects to.
    #[serde(default)]
    pub writable: bool,
    /// Query collections only: the writable collections the query draws from, each the
    /// name of a TaxiiCollection of the same service (or a collection id, title or
    /// alias). Unset: every writable collection that all of this collection's readers
    /// may read anyway, so a query never widens an audience by accident; naming a
    /// source publishes it to this collection's readers (status warns when they are
    /// more than the source's). See docs/security.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Who may read and write.
    #[serde(default)]
    pub access: AccessSpec,
}

/// The language of a TaxiiCollection's `query`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryDialect {
    /// Taxiway's query language (docs/query-language.md).
    #[default]
    Native,
    /// Cortex XSOAR's indicator query syntax (docs/migrating.md).
    Xsoar,
}

impl QueryDialect {
    /// Whether this is the native language (the default, not written out).
    pub fn is_native(&self) -> bool {
        *self == QueryDialect::Native
    }
}

/// Access rules: user names or `group:<name>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessSpec {
    /// May read; empty means every signed-in user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// May write (writable collections only): POST objects and DELETE them. Nobody but
    /// those named: empty or absent means nobody may write, so name every producer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// Anyone may read without credentials.
    #[serde(default)]
    pub anonymous_read: bool,
}

/// What the operator observed and decided.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxiiCollectionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The TAXII collection id (a UUIDv4): `spec.id`, else `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The API root the collection is served in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_root: Option<String>,
    /// The collection's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The query served, in the native language, when `spec.dialect` is not native.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `Accepted` (served by its service) and `QueryValid`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Query collections: the writable collections (TaxiiCollection names) it draws from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// What is allowed but probably not meant, e.g. a query collection readable more
    /// widely than a collection it draws from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
