//! Cortex XSOAR's collections JSON as TaxiiCollections: the entries of
//! `spec.collectionsFrom` (validated and served like TaxiiCollections) and what
//! `taxiway-operator xsoar-collections` prints for those who prefer one resource per
//! collection. Parsing and query translation are the server's own (`taxiway-model`).

use kube::api::ObjectMeta;
use taxiway_model::config::xsoar as collections_json;
use taxiway_model::query::xsoar as xsoar_query;

use crate::crd::{QueryDialect, TaxiiCollection, TaxiiCollectionSpec};

/// One collection of the JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonCollection {
    /// Its name: the collection title.
    pub name: String,
    /// Its XSOAR query.
    pub query: String,
    /// Its description.
    pub description: Option<String>,
}

/// Parse the collections JSON, in the order written.
pub fn parse(text: &str) -> Result<Vec<JsonCollection>, String> {
    collections_json::parse_collections(text)
        .map(|entries| {
            entries
                .into_iter()
                .map(|e| JsonCollection {
                    name: e.name,
                    query: e.query,
                    description: e.description,
                })
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// The stable TAXII collection id of `name` in `api_root` (the same the standalone
/// server derives for its `collections.json`).
pub fn collection_id(api_root: &str, name: &str) -> String {
    collections_json::collection_id(api_root, name)
}

/// An XSOAR query in the native query language, or why it cannot be.
pub fn translate(query: &str) -> Result<String, String> {
    xsoar_query::translate(query).map_err(|e| e.to_string())
}

/// The entries as in-memory TaxiiCollections of `service` (never stored in the API):
/// named and titled by the entry's name, with the derived id, read by `read`.
pub fn as_collections(
    entries: &[JsonCollection],
    service: &str,
    namespace: &str,
    api_root: &str,
    read: &[String],
    sources: Option<&[String]>,
) -> Vec<TaxiiCollection> {
    entries
        .iter()
        .map(|entry| {
            let mut collection = TaxiiCollection::new(&entry.name, spec(entry, service, api_root));
            collection.metadata.namespace = Some(namespace.to_string());
            collection.spec.access.read = read.to_vec();
            collection.spec.sources = sources.map(<[String]>::to_vec);
            collection
        })
        .collect()
}

fn spec(entry: &JsonCollection, service: &str, api_root: &str) -> TaxiiCollectionSpec {
    TaxiiCollectionSpec {
        service: service.to_string(),
        id: Some(collection_id(api_root, &entry.name)),
        title: Some(entry.name.clone()),
        description: entry.description.clone(),
        alias: None,
        api_root: Some(api_root.to_string()),
        query: Some(entry.query.clone()),
        dialect: QueryDialect::Xsoar,
        writable: false,
        sources: None,
        access: Default::default(),
    }
}

/// A Kubernetes object name for a collection name: lowercase letters, digits and `-`,
/// at most 63 characters, made unique among `taken`.
fn object_name(name: &str, taken: &mut Vec<String>) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(56).collect();
    slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        slug = "collection".into();
    }
    let mut candidate = slug.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{slug}-{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// The TaxiiCollections equivalent to the JSON, as a YAML stream for `kubectl apply`.
/// Ids are derived as `spec.collectionsFrom` derives them, so consumers keep their
/// configured ids when moving from one form to the other.
pub fn collections_yaml(
    entries: &[JsonCollection],
    service: &str,
    namespace: Option<&str>,
    api_root: &str,
) -> Result<String, String> {
    let mut taken = Vec::new();
    let mut out = String::new();
    for entry in entries {
        let native = translate(&entry.query).map_err(|e| format!("{:?}: {e}", entry.name))?;
        let resource = TaxiiCollection {
            metadata: ObjectMeta {
                name: Some(object_name(&entry.name, &mut taken)),
                namespace: namespace.map(str::to_string),
                ..ObjectMeta::default()
            },
            spec: spec(entry, service, api_root),
            status: None,
        };
        let mut value = serde_json::to_value(&resource).map_err(|e| e.to_string())?;
        if let Some(object) = value.as_object_mut() {
            object.remove("status");
        }
        let yaml = serde_saphyr::to_string(&value).map_err(|e| e.to_string())?;
        out.push_str("---\n");
        out.push_str(&format!("# native query: {native}\n"));
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
        "High confidence IPs": {"query": "type:IP and verdict:Malicious", "description": "Block list"},
        "APT29": "tags:apt29",
        "apt29!": "tags:apt29 -type:File"
    }"#;

    #[test]
    fn entries_keep_their_order_and_ids_their_derivation() {
        let entries = parse(JSON).expect("valid JSON");
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["High confidence IPs", "APT29", "apt29!"]);
        assert_eq!(entries[0].description.as_deref(), Some("Block list"));
        let a = collection_id("feeds", "APT29");
        assert_eq!(a, collection_id("feeds", "APT29"), "stable");
        assert_ne!(a, collection_id("other", "APT29"), "per API root");
        let collections = as_collections(&entries, "feeds", "intel", "feeds", &[], None);
        assert_eq!(collections[1].spec.id.as_deref(), Some(a.as_str()));
        assert_eq!(collections[1].spec.dialect, QueryDialect::Xsoar);
    }

    #[test]
    fn object_names_are_dns_labels_and_unique() {
        let mut taken = Vec::new();
        assert_eq!(
            object_name("High confidence IPs", &mut taken),
            "high-confidence-ips"
        );
        assert_eq!(object_name("APT29", &mut taken), "apt29");
        assert_eq!(object_name("apt29!", &mut taken), "apt29-2");
        assert_eq!(object_name("¿?", &mut taken), "collection");
        let long = "x".repeat(100);
        assert!(object_name(&long, &mut taken).len() <= 63);
    }

    #[test]
    fn the_yaml_applies_as_taxii_collections() {
        let entries = parse(JSON).expect("valid JSON");
        let yaml = collections_yaml(&entries, "feeds", Some("intel"), "feeds").expect("yaml");
        let docs: Vec<&str> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .collect();
        assert_eq!(docs.len(), 3);
        for doc in docs {
            let c: TaxiiCollection = serde_saphyr::from_str(doc).expect("a TaxiiCollection");
            assert_eq!(c.spec.service, "feeds");
            assert_eq!(c.spec.dialect, QueryDialect::Xsoar);
            assert!(doc.contains("# native query: "), "{doc}");
        }
        let bad = parse(r#"{"x": "investigationIDs:42"}"#).expect("valid JSON");
        let e = collections_yaml(&bad, "feeds", None, "feeds").expect_err("unsupported field");
        assert!(e.contains("investigationIDs"), "{e}");
    }
}
