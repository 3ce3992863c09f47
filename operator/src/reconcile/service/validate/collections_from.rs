//! `spec.collectionsFrom`: the collections of an XSOAR collections JSON, admitted after
//! the TaxiiCollections (which win a title both claim) and judged the same way. When
//! the JSON as a whole cannot be read (ConfigMap or key missing, invalid JSON), the
//! collections it defined last time keep being served, as a TaxiiCollection whose query
//! is edited into an invalid one keeps its last valid query.

use kube::ResourceExt;
use taxiway_model::config::{Collection, Config};

use super::collections::{admit_collections, default_api_root, try_admit};
use super::{CollectionVerdict, Problem, ProblemKind, Urls};
use crate::crd::{CollectionsFromSpec, CollectionsFromStatus, JsonCollectionStatus};
use crate::xsoar;

use super::super::inputs::Inputs;

/// Admit the collections of `spec.collectionsFrom` into `config`; what became of them.
pub(super) fn admit_collections_from(
    config: Config,
    inputs: &Inputs,
    urls: &Urls,
    problems: &mut Vec<Problem>,
) -> (Config, Option<CollectionsFromStatus>) {
    let service = &inputs.service;
    let Some(from) = service.spec.collections_from.as_ref() else {
        return (config, None);
    };
    let api_root = from
        .api_root
        .clone()
        .unwrap_or_else(|| default_api_root(&config));
    let source = format!("ConfigMap {}, key {}", from.config_map_name, from.key);
    let entries = read_json(inputs, from).and_then(|text| xsoar::parse(&text));
    match entries {
        Ok(entries) => {
            // Sources naming TaxiiCollections of the service become their ids.
            let sources: Option<Vec<String>> = from.sources.as_ref().map(|names| {
                names
                    .iter()
                    .map(|name| {
                        inputs
                            .collections
                            .iter()
                            .find(|c| &c.name_any() == name)
                            .and_then(|c| c.spec.id.clone().or_else(|| c.uid()))
                            .unwrap_or_else(|| name.clone())
                    })
                    .collect()
            });
            let synthetic = xsoar::as_collections(
                &entries,
                &service.name_any(),
                &service.namespace().unwrap_or_default(),
                &api_root,
                &from.read,
                sources.as_deref(),
            );
            let (config, verdicts) =
                admit_collections(config, &synthetic, &inputs.previous_queries, urls);
            let collections: Vec<JsonCollectionStatus> = entries
                .iter()
                .filter_map(|e| verdicts.iter().find(|v| v.name == e.name))
                .map(entry_status)
                .collect();
            let rejected: Vec<&str> = collections
                .iter()
                .filter(|c| c.url.is_none())
                .map(|c| c.name.as_str())
                .collect();
            if !rejected.is_empty() {
                problems.push(Problem {
                    kind: ProblemKind::RejectedCollections,
                    message: format!(
                        "spec.collectionsFrom ({source}): collections not served: {}",
                        rejected.join(", ")
                    ),
                });
            }
            let served = collections.len() - rejected.len();
            let status = CollectionsFromStatus {
                source,
                served: i32::try_from(served).unwrap_or(i32::MAX),
                error: None,
                collections,
            };
            (config, Some(status))
        }
        Err(error) => {
            problems.push(Problem {
                kind: ProblemKind::InvalidCollectionsFrom,
                message: format!(
                    "spec.collectionsFrom ({source}): {error}; the collections it defined \
                     before keep being served"
                ),
            });
            let (config, collections) = keep_previous(config, inputs, urls);
            let status = CollectionsFromStatus {
                source,
                served: i32::try_from(collections.len()).unwrap_or(i32::MAX),
                error: Some(error),
                collections,
            };
            (config, Some(status))
        }
    }
}

/// The JSON text, or why there is none.
fn read_json(inputs: &Inputs, from: &CollectionsFromSpec) -> Result<String, String> {
    let config_map = inputs
        .config_maps
        .get(&from.config_map_name)
        .ok_or_else(|| format!("ConfigMap {} not found", from.config_map_name))?;
    if let Some(text) = config_map.data.as_ref().and_then(|d| d.get(&from.key)) {
        return Ok(text.clone());
    }
    if let Some(bytes) = config_map
        .binary_data
        .as_ref()
        .and_then(|d| d.get(&from.key))
    {
        return String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("key {} is not UTF-8 text", from.key));
    }
    Err(format!(
        "ConfigMap {} has no key {}",
        from.config_map_name, from.key
    ))
}

fn entry_status(verdict: &CollectionVerdict) -> JsonCollectionStatus {
    let message = match (&verdict.rejection, &verdict.previous_query) {
        (Some(r), _) => Some(r.message.clone()),
        (None, Some(_)) => {
            Some("its query is invalid; served with its last valid query until it is fixed".into())
        }
        (None, None) => None,
    };
    JsonCollectionStatus {
        name: verdict.name.clone(),
        id: verdict.id.clone().unwrap_or_default(),
        query: verdict.native_query.clone(),
        url: verdict.url.clone(),
        message,
    }
}

/// Keep serving what the JSON defined last time: collections served before whose id is
/// the one derived from their API root and title, and which no TaxiiCollection serves.
fn keep_previous(
    mut config: Config,
    inputs: &Inputs,
    urls: &Urls,
) -> (Config, Vec<JsonCollectionStatus>) {
    let previous: Vec<Collection> = inputs
        .previous_collections
        .iter()
        .filter(|c| c.id == xsoar::collection_id(&c.api_root, &c.title))
        .filter(|c| !config.collections.iter().any(|served| served.id == c.id))
        .cloned()
        .collect();
    let mut kept = Vec::new();
    for collection in previous {
        let status = JsonCollectionStatus {
            name: collection.title.clone(),
            id: collection.id.clone(),
            query: collection.query.clone(),
            url: Some(urls.collection(&collection.api_root, &collection.id)),
            message: Some("served as defined before the JSON became unreadable".into()),
        };
        if try_admit(&mut config, collection).is_empty() {
            kept.push(status);
        }
    }
    (config, kept)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    use super::super::{validate, ProblemKind, Validated};
    use crate::reconcile::service::fixtures::{self, NS};
    use crate::reconcile::service::inputs::{Inputs, Settings};
    use crate::xsoar;

    const JSON: &str = r#"{
        "Malicious IPs": {"query": "type:IP and verdict:Malicious", "description": "Block these"},
        "APT29": "tags:apt29 -type:File",
        "Cases": "investigationIDs:42"
    }"#;

    fn with_json(json: Option<&str>) -> Inputs {
        let mut inputs = fixtures::inputs(fixtures::two_collections());
        let mut spec = fixtures::full_spec();
        spec["collectionsFrom"] = json!({"configMapName": "xsoar"});
        inputs.service = fixtures::service(spec);
        if let Some(json) = json {
            let cm: ConfigMap = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "xsoar", "namespace": NS},
                "data": {"collections.json": json}
            }))
            .expect("fixture ConfigMap");
            inputs.config_maps.insert("xsoar".into(), cm);
        }
        inputs
    }

    fn validated(inputs: &Inputs) -> Validated {
        validate(inputs, &Settings::default())
    }

    #[test]
    fn each_entry_is_a_query_collection_with_a_derived_id_and_its_native_query() {
        let v = validated(&with_json(Some(JSON)));
        let from = v.collections_from.as_ref().expect("reported");
        assert_eq!(from.source, "ConfigMap xsoar, key collections.json");
        assert_eq!(from.served, 2);
        assert_eq!(
            v.accepted(),
            4,
            "two TaxiiCollections and two from the JSON"
        );
        let names: Vec<&str> = from.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Malicious IPs", "APT29", "Cases"], "in JSON order");
        let ips = &from.collections[0];
        assert_eq!(ips.id, xsoar::collection_id("feeds", "Malicious IPs"));
        assert_eq!(
            ips.url.as_deref(),
            Some(format!("https://taxii.example.com/feeds/collections/{}/", ips.id).as_str())
        );
        let native = ips.query.as_deref().expect("the native query");
        assert_eq!(
            Some(native.to_string()),
            xsoar::translate("type:IP and verdict:Malicious").ok()
        );
        let config = v.config.as_ref().expect("config");
        let served = config
            .collections
            .iter()
            .find(|c| c.id == ips.id)
            .expect("rendered");
        assert_eq!(served.title, "Malicious IPs");
        assert_eq!(served.description.as_deref(), Some("Block these"));
        assert_eq!(
            served.query.as_deref(),
            Some(native),
            "rendered in the native language"
        );
        assert!(!served.writable);
        // The unsupported field is named, and that collection alone is left out.
        let cases = &from.collections[2];
        assert!(cases.url.is_none());
        let message = cases.message.as_deref().unwrap_or_default();
        assert!(message.contains("investigationIDs"), "{message}");
        assert!(v
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::RejectedCollections && p.message.contains("Cases")));
    }

    #[test]
    fn readers_and_sources_are_those_given() {
        let mut inputs = with_json(Some(r#"{"APT29": "tags:apt29"}"#));
        let mut spec = fixtures::full_spec();
        spec["collectionsFrom"] = json!({
            "configMapName": "xsoar", "read": ["group:soc"], "sources": ["inbox"]
        });
        inputs.service = fixtures::service(spec);
        let v = validated(&inputs);
        let id = xsoar::collection_id("feeds", "APT29");
        let config = v.config.as_ref().expect("config");
        let served = config
            .collections
            .iter()
            .find(|c| c.id == id)
            .expect("served");
        assert_eq!(served.access.read, ["group:soc"]);
        assert_eq!(
            served.sources.as_deref(),
            Some(&["e78eb331-c15a-463f-ba62-73b2a71a324a".to_string()][..]),
            "the TaxiiCollection name becomes its id"
        );
    }

    #[test]
    fn a_title_a_taxii_collection_holds_stays_with_it() {
        let v = validated(&with_json(Some(r#"{"High-confidence IPv4": "type:IP"}"#)));
        let from = v.collections_from.as_ref().expect("reported");
        assert_eq!(from.served, 0);
        assert!(from.collections[0].message.is_some());
        let kept = v
            .collections
            .iter()
            .find(|c| c.name == "high-confidence-ipv4")
            .expect("verdict");
        assert!(
            kept.rejection.is_none(),
            "the TaxiiCollection keeps its title"
        );
    }

    #[test]
    fn an_unreadable_json_keeps_what_it_defined_before() {
        let first = validated(&with_json(Some(JSON)));
        let rendered = first.config.expect("config").collections;
        for broken in [None, Some("{not json")] {
            let mut inputs = with_json(broken);
            inputs.previous_collections = rendered.clone();
            inputs.previous_queries = BTreeMap::new();
            let v = validated(&inputs);
            let from = v.collections_from.as_ref().expect("reported");
            assert!(from.error.is_some(), "{broken:?}");
            assert_eq!(from.served, 2, "{broken:?}");
            assert!(v
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::InvalidCollectionsFrom));
            let config = v.config.as_ref().expect("config");
            assert_eq!(config.collections.len(), 4, "{broken:?}");
        }
        // Without collectionsFrom, nothing of it is kept.
        let mut inputs = fixtures::inputs(fixtures::two_collections());
        inputs.previous_collections = rendered;
        let v = validated(&inputs);
        assert!(v.collections_from.is_none());
        assert_eq!(v.config.expect("config").collections.len(), 2);
    }

    #[test]
    fn an_xsoar_taxii_collection_is_translated_and_reports_its_native_query() {
        let mut collections = fixtures::two_collections();
        collections.push(fixtures::collection(
            "apt29",
            "2a4c5b9e-7d1f-4e3a-9b8c-0d1e2f3a4b5c",
            3,
            json!({"query": "tags:apt29 and verdict:Malicious", "dialect": "xsoar"}),
        ));
        collections.push(fixtures::collection(
            "cases",
            "3b5d6c0f-8e2a-4f4b-8c9d-1e2f3a4b5c6d",
            4,
            json!({"query": "investigationIDs:42", "dialect": "xsoar"}),
        ));
        let v = validate(&fixtures::inputs(collections), &Settings::default());
        let apt = v
            .collections
            .iter()
            .find(|c| c.name == "apt29")
            .expect("apt29");
        assert!(apt.rejection.is_none(), "{apt:?}");
        let native = apt.native_query.as_deref().expect("native query reported");
        assert!(native.contains("labels:apt29"), "{native}");
        let cases = v
            .collections
            .iter()
            .find(|c| c.name == "cases")
            .expect("cases");
        let rejection = cases.rejection.as_ref().expect("rejected");
        assert_eq!(rejection.reason, "InvalidQuery");
        assert!(
            rejection.message.contains("investigationIDs"),
            "{}",
            rejection.message
        );
    }
}
