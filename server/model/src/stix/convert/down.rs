//! STIX 2.1 → 2.0, for serving stored objects on the TAXII 2.0 API.
//!
//! Each standard type keeps only the properties STIX 2.0 defines for it (plus custom
//! `x_` properties), so 2.1-only properties go and reserved names such as
//! `confidence` never reach a 2.0 client. Type vocabularies move back into `labels`;
//! ids, references, markings and timestamps take the forms 2.0 requires.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::ids::to_v4_id;
use super::markings::{definition_to_stix20, refs_for_stix20};
use super::types::{servable_as_stix20, type_of};
use super::unservable::Unservable;
use super::up::TYPE_LABELS;

fn unservable(message: impl Into<String>) -> Unservable {
    Unservable(message.into())
}

/// Common properties of STIX 2.0 objects.
const COMMON: &[&str] = &[
    "type",
    "id",
    "created_by_ref",
    "created",
    "modified",
    "revoked",
    "labels",
    "external_references",
    "object_marking_refs",
    "granular_markings",
];

/// Common properties STIX 2.1 added (`confidence` is even reserved in 2.0): dropped
/// from custom objects, whose other properties 2.0 cannot know.
const NEW_IN_21: &[&str] = &["spec_version", "confidence", "lang", "extensions"];

/// The properties STIX 2.0 defines for each of its types, besides [`COMMON`].
fn properties(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "attack-pattern" => &["name", "description", "kill_chain_phases"],
        "campaign" => &[
            "name",
            "description",
            "aliases",
            "first_seen",
            "last_seen",
            "objective",
        ],
        // `action` is reserved in 2.0.
        "course-of-action" => &["name", "description"],
        "identity" => &[
            "name",
            "description",
            "identity_class",
            "sectors",
            "contact_information",
        ],
        "indicator" => &[
            "name",
            "description",
            "pattern",
            "valid_from",
            "valid_until",
            "kill_chain_phases",
        ],
        "intrusion-set" => &[
            "name",
            "description",
            "aliases",
            "first_seen",
            "last_seen",
            "goals",
            "resource_level",
            "primary_motivation",
            "secondary_motivations",
        ],
        "malware" => &["name", "description", "kill_chain_phases"],
        "observed-data" => &[
            "first_observed",
            "last_observed",
            "number_observed",
            "objects",
        ],
        "report" => &["name", "description", "published", "object_refs"],
        "threat-actor" => &[
            "name",
            "description",
            "aliases",
            "roles",
            "goals",
            "sophistication",
            "resource_level",
            "primary_motivation",
            "secondary_motivations",
            "personal_motivations",
        ],
        "tool" => &["name", "description", "kill_chain_phases", "tool_version"],
        "vulnerability" => &["name", "description"],
        "relationship" => &[
            "relationship_type",
            "description",
            "source_ref",
            "target_ref",
        ],
        "sighting" => &[
            "first_seen",
            "last_seen",
            "count",
            "sighting_of_ref",
            "observed_data_refs",
            "where_sighted_refs",
            "summary",
        ],
        "marking-definition" => &["definition_type", "definition"],
        _ => return None,
    })
}

/// Properties STIX 2.0 requires of each type (after conversion), besides `type`/`id`.
fn required(kind: &str) -> &'static [&'static str] {
    match kind {
        "attack-pattern" | "campaign" | "course-of-action" | "intrusion-set" | "vulnerability" => {
            &["created", "modified", "name"]
        }
        "identity" => &["created", "modified", "name", "identity_class"],
        "indicator" => &["created", "modified", "labels", "pattern", "valid_from"],
        "malware" | "threat-actor" | "tool" => &["created", "modified", "labels", "name"],
        "observed-data" => &[
            "created",
            "modified",
            "first_observed",
            "last_observed",
            "number_observed",
            "objects",
        ],
        "report" => &[
            "created",
            "modified",
            "labels",
            "name",
            "published",
            "object_refs",
        ],
        "relationship" => &[
            "created",
            "modified",
            "relationship_type",
            "source_ref",
            "target_ref",
        ],
        "sighting" => &["created", "modified", "sighting_of_ref"],
        "marking-definition" => &["created", "definition_type", "definition"],
        _ => &["created", "modified"],
    }
}

/// The `labels` 2.0 requires when 2.1 gives no type vocabulary value.
fn fallback_label(kind: &str) -> &'static str {
    match kind {
        "report" => "threat-report",
        _ => "unknown",
    }
}

/// References that must point at an object 2.0 can hold, or the object makes no sense.
const VITAL_REFS: &[&str] = &["source_ref", "target_ref", "sighting_of_ref"];

/// A stored (2.1) object as a STIX 2.0 object, or why 2.0 cannot express it.
pub fn to_stix20(object: &Value) -> Result<Value, Unservable> {
    let source = object
        .as_object()
        .ok_or_else(|| unservable("not a JSON object"))?;
    let kind = source
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| unservable("no type"))?;
    if !servable_as_stix20(kind) {
        return Err(unservable(format!("STIX 2.0 has no {kind} objects")));
    }
    let known = properties(kind);
    let mut out: Map<String, Value> = source
        .iter()
        .filter(|(k, _)| match known {
            Some(props) => {
                COMMON.contains(&k.as_str()) || props.contains(&k.as_str()) || is_custom(k)
            }
            None => {
                COMMON.contains(&k.as_str())
                    || (!NEW_IN_21.contains(&k.as_str()) && is_property_name(k))
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    match kind {
        "indicator" => {
            let pattern_type = source.get("pattern_type").and_then(Value::as_str);
            if pattern_type.is_some_and(|t| t != "stix") {
                return Err(unservable("STIX 2.0 indicators only hold STIX patterns"));
            }
        }
        "identity" => {
            out.entry("identity_class").or_insert(json!("unknown"));
        }
        "marking-definition" => {
            definition_to_stix20(&mut out)?;
            out.retain(|k, _| k != "modified" && k != "revoked" && k != "labels");
        }
        "observed-data" => {
            if let Some(Value::Object(objects)) = out.get_mut("objects") {
                for observable in objects.values_mut() {
                    if let Some(o) = observable.as_object_mut() {
                        o.retain(|k, _| !matches!(k.as_str(), "id" | "spec_version" | "defanged"));
                    }
                }
            }
        }
        _ => {}
    }
    if let Some((_, vocabulary)) = TYPE_LABELS.iter().find(|(t, _)| *t == kind) {
        out.insert("labels".into(), labels(source, vocabulary, kind));
    }
    for field in ["created", "modified"] {
        if let Some(v) = out.get_mut(field) {
            let ms = v
                .as_str()
                .and_then(millisecond_timestamp)
                .ok_or_else(|| unservable(format!("unreadable `{field}`")))?;
            *v = Value::String(ms);
        }
    }
    map_references(&mut out)?;
    if kind == "sighting" {
        // 2.0 sightings are seen by identities only (2.1 also allows locations).
        retain_refs(&mut out, "where_sighted_refs", |r| type_of(r) == "identity");
    }
    if let Some(missing) = required(kind).iter().find(|p| !out.contains_key(**p)) {
        return Err(unservable(format!(
            "STIX 2.0 requires `{missing}` on {kind} objects"
        )));
    }
    Ok(Value::Object(out))
}

/// 2.0 `labels` of a type with a vocabulary: the 2.1 vocabulary values, then the 2.1
/// free-form labels, else a fallback (2.0 requires at least one).
fn labels(source: &Map<String, Value>, vocabulary: &str, kind: &str) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for prop in [vocabulary, "labels"] {
        for v in source
            .get(prop)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if v.as_str().is_some_and(|s| !s.is_empty()) && !out.contains(v) {
                out.push(v.clone());
            }
        }
    }
    if out.is_empty() {
        out.push(json!(fallback_label(kind)));
    }
    Value::Array(out)
}

/// Ids and references in the forms 2.0 accepts: v4 UUIDs, TLP 1.0 markings, and no
/// references to objects 2.0 does not have.
fn map_references(out: &mut Map<String, Value>) -> Result<(), Unservable> {
    let id = out.get("id").and_then(Value::as_str).unwrap_or("");
    let id = to_v4_id(id).ok_or_else(|| unservable("an id STIX 2.0 cannot express"))?;
    out.insert("id".into(), Value::String(id));

    let keys: Vec<String> = out
        .keys()
        .filter(|k| k.ends_with("_ref") || k.ends_with("_refs"))
        .cloned()
        .collect();
    for key in keys {
        let marking = key == "object_marking_refs";
        match out.remove(&key) {
            Some(Value::String(r)) => match served_ref(&r) {
                Some(mapped) => {
                    out.insert(key, Value::String(mapped));
                }
                None if VITAL_REFS.contains(&key.as_str()) => {
                    return Err(unservable(format!(
                        "`{key}` points at an object STIX 2.0 cannot hold"
                    )));
                }
                None => {}
            },
            Some(Value::Array(refs)) => {
                let mut mapped: Vec<Value> = Vec::with_capacity(refs.len());
                for r in refs.iter().filter_map(Value::as_str) {
                    let expanded = if marking { refs_for_stix20(r) } else { vec![r] };
                    for m in expanded.into_iter().filter_map(served_ref) {
                        let m = Value::String(m);
                        if !mapped.contains(&m) {
                            mapped.push(m);
                        }
                    }
                }
                if !mapped.is_empty() {
                    out.insert(key, Value::Array(mapped));
                }
            }
            // Not a reference after all (a custom property): leave it alone.
            Some(other) => {
                out.insert(key, other);
            }
            None => {}
        }
    }
    if let Some(Value::Array(markings)) = out.remove("granular_markings") {
        let mapped: Vec<Value> = markings
            .into_iter()
            .filter_map(|mut m| {
                let r = m.get("marking_ref")?.as_str()?;
                let r = served_ref(refs_for_stix20(r).first()?)?;
                let o = m.as_object_mut()?;
                o.insert("marking_ref".into(), Value::String(r));
                o.remove("lang");
                Some(m)
            })
            .collect();
        if !mapped.is_empty() {
            out.insert("granular_markings".into(), Value::Array(mapped));
        }
    }
    Ok(())
}

/// A reference as served: to a type 2.0 has, with a v4 UUID.
fn served_ref(r: &str) -> Option<String> {
    if !servable_as_stix20(type_of(r)) {
        return None;
    }
    to_v4_id(r)
}

fn retain_refs(out: &mut Map<String, Value>, key: &str, keep: impl Fn(&str) -> bool) {
    if let Some(Value::Array(refs)) = out.get_mut(key) {
        refs.retain(|r| r.as_str().is_some_and(&keep));
        if refs.is_empty() {
            out.remove(key);
        }
    }
}

/// A custom property 2.0 accepts: `x_` and a valid property name.
fn is_custom(name: &str) -> bool {
    name.starts_with("x_") && is_property_name(name)
}

/// STIX 2.0 property names: 3–250 of `a-z`, `0-9`, `_`.
fn is_property_name(name: &str) -> bool {
    (3..=250).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `created`/`modified` as 2.0 requires them: UTC, exactly millisecond precision.
fn millisecond_timestamp(ts: &str) -> Option<String> {
    let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: &str = "identity--41e5d472-f4b3-42f7-a7ed-1eefb1e3bc65";
    const TLP2_GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    const TLP1_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created_by_ref": IDENTITY,
            "created": "2024-01-01T00:00:00Z", "modified": "2024-02-01T00:00:00.123456Z",
            "name": "C2", "indicator_types": ["malicious-activity"], "labels": ["apt"],
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "pattern_version": "2.1", "valid_from": "2024-01-01T00:00:00Z",
            "confidence": 80, "lang": "en", "x_acme_score": 3,
            "object_marking_refs": [TLP2_GREEN],
        })
    }

    fn converted(v: Value) -> Map<String, Value> {
        match to_stix20(&v) {
            Ok(Value::Object(m)) => m,
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[test]
    fn an_indicator_gets_labels_and_loses_2_1_properties() {
        let m = converted(indicator());
        assert_eq!(m["labels"], json!(["malicious-activity", "apt"]));
        for gone in [
            "spec_version",
            "indicator_types",
            "pattern_type",
            "pattern_version",
            "confidence",
            "lang",
        ] {
            assert!(!m.contains_key(gone), "{gone} should be dropped");
        }
        assert_eq!(m["x_acme_score"], 3, "custom properties are kept");
        assert_eq!(m["created"], "2024-01-01T00:00:00.000Z");
        assert_eq!(m["modified"], "2024-02-01T00:00:00.123Z");
        assert_eq!(m["valid_from"], "2024-01-01T00:00:00Z");
        assert_eq!(m["object_marking_refs"], json!([TLP1_GREEN]));
        assert_eq!(m["created_by_ref"], IDENTITY);
    }

    #[test]
    fn labelled_types_without_a_vocabulary_get_a_fallback() {
        let mut i = indicator();
        let map = i.as_object_mut().expect("object");
        map.remove("indicator_types");
        map.remove("labels");
        assert_eq!(converted(i)["labels"], json!(["unknown"]));
        let report = json!({"type": "report", "spec_version": "2.1",
            "id": "report--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": "r", "published": "2024-01-01T00:00:00Z",
            "object_refs": ["indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                            "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]});
        let r = converted(report);
        assert_eq!(r["labels"], json!(["threat-report"]));
        assert_eq!(
            r["object_refs"],
            json!(["indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]),
            "references to observables are dropped"
        );
    }

    #[test]
    fn malware_keeps_only_2_0_properties() {
        let m = converted(json!({
            "type": "malware", "spec_version": "2.1",
            "id": "malware--7726a784-b11a-404e-806f-d44815bc15f8",
            "created": "2025-02-06T17:41:52.155Z", "modified": "2025-02-06T17:41:52.155Z",
            "name": "FERNLOADER", "malware_types": ["dropper"], "is_family": true,
            "labels": ["crime-ware"], "aliases": ["FL"], "first_seen": "2025-01-01T00:00:00Z"
        }));
        assert_eq!(m["labels"], json!(["dropper", "crime-ware"]));
        for gone in ["is_family", "aliases", "first_seen", "malware_types"] {
            assert!(!m.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn types_and_objects_2_0_lacks_are_unservable() {
        let sco = json!({"type": "ipv4-addr", "spec_version": "2.1",
            "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"});
        assert!(to_stix20(&sco).is_err());
        let mut sigma = indicator();
        sigma["pattern_type"] = json!("sigma");
        assert!(to_stix20(&sigma).is_err());
        let rel = json!({"type": "relationship", "spec_version": "2.1",
            "id": "relationship--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "relationship_type": "based-on",
            "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "target_ref": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"});
        assert!(to_stix20(&rel).is_err(), "a relationship to an observable");
        let mut no_name = json!({"type": "malware", "spec_version": "2.1",
            "id": "malware--7726a784-b11a-404e-806f-d44815bc15f8",
            "created": "2025-02-06T17:41:52.155Z", "modified": "2025-02-06T17:41:52.155Z",
            "is_family": false});
        assert!(to_stix20(&no_name).is_err(), "2.0 malware needs a name");
        no_name["name"] = json!("x");
        assert!(to_stix20(&no_name).is_ok());
    }

    #[test]
    fn uuid_v5_ids_and_references_become_v4() {
        let mut i = indicator();
        i["id"] = json!("indicator--a4d70b75-6f4a-5d19-9137-da863edd33d7");
        i["created_by_ref"] = json!("identity--a4d70b75-6f4a-5d19-9137-da863edd33d7");
        let m = converted(i);
        assert_eq!(m["id"], "indicator--a4d70b75-6f4a-4d19-9137-da863edd33d7");
        assert_eq!(
            m["created_by_ref"],
            "identity--a4d70b75-6f4a-4d19-9137-da863edd33d7"
        );
    }

    #[test]
    fn identities_markings_and_sightings() {
        let id = converted(
            json!({"type": "identity", "spec_version": "2.1", "id": IDENTITY,
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": "CERT", "roles": ["x"]}),
        );
        assert_eq!(id["identity_class"], "unknown");
        assert!(!id.contains_key("roles"));

        let tlp = converted(json!({"type": "marking-definition", "spec_version": "2.1",
            "id": TLP2_GREEN, "created": "2022-10-01T00:00:00.000Z", "name": "TLP:GREEN",
            "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
                {"extension_type": "property-extension", "tlp_2_0": "green"}}}));
        assert_eq!(tlp["definition_type"], "statement");
        assert!(!tlp.contains_key("extensions") && !tlp.contains_key("name"));

        let s = converted(json!({"type": "sighting", "spec_version": "2.1",
            "id": "sighting--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "sighting_of_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "where_sighted_refs": [IDENTITY, "location--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"],
            "granular_markings": [{"lang": "en", "selectors": ["description"]},
                                  {"marking_ref": TLP2_GREEN, "selectors": ["count"]}]}));
        assert_eq!(s["where_sighted_refs"], json!([IDENTITY]));
        assert_eq!(
            s["granular_markings"],
            json!([{"marking_ref": TLP1_GREEN, "selectors": ["count"]}])
        );
    }

    #[test]
    fn custom_objects_pass_without_2_1_common_properties() {
        let m = converted(json!({"type": "x-acme-widget", "spec_version": "2.1",
            "id": "x-acme-widget--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "confidence": 5, "widget_size": 3, "BadName": 1}));
        assert_eq!(m["widget_size"], 3);
        assert!(!m.contains_key("confidence") && !m.contains_key("BadName"));
        assert!(!m.contains_key("spec_version"));
    }
}
