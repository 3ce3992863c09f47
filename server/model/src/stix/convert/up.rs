//! STIX 2.0 → 2.1, for objects posted on the TAXII 2.0 API: the converted object is
//! what the store keeps, so 2.1 clients read valid 2.1.

use serde_json::{json, Value};

/// Types whose 2.0 `labels` are a type vocabulary, and the 2.1 property that holds
/// that vocabulary.
pub(super) const TYPE_LABELS: &[(&str, &str)] = &[
    ("indicator", "indicator_types"),
    ("malware", "malware_types"),
    ("report", "report_types"),
    ("threat-actor", "threat_actor_types"),
    ("tool", "tool_types"),
];

/// A posted STIX 2.0 object as STIX 2.1. Objects that already carry a
/// `spec_version` (2.1 objects in a 2.0 bundle) and non-objects pass unchanged.
pub fn to_stix21(mut object: Value) -> Value {
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    if map.contains_key("spec_version") {
        return object;
    }
    map.insert("spec_version".into(), json!("2.1"));
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some((_, vocabulary)) = TYPE_LABELS.iter().find(|(t, _)| *t == kind) {
        if !map.contains_key(*vocabulary) {
            if let Some(labels) = map.remove("labels") {
                map.insert((*vocabulary).to_string(), labels);
            }
        }
    }
    match kind.as_str() {
        // 2.0 patterns are STIX patterns; `valid_from` is required in both versions.
        "indicator" => {
            map.entry("pattern_type").or_insert(json!("stix"));
        }
        // 2.0 malware describes families and instances alike; a named 2.0 malware
        // object is most often a family.
        "malware" => {
            map.entry("is_family").or_insert(json!(true));
        }
        _ => {}
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stix::convert::to_stix20;

    fn indicator20() -> Value {
        json!({
            "type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "labels": ["malicious-activity"], "pattern": "[ipv4-addr:value = '198.51.100.1']",
            "valid_from": "2024-01-01T00:00:00Z"
        })
    }

    #[test]
    fn a_2_0_indicator_becomes_2_1() {
        let v = to_stix21(indicator20());
        assert_eq!(v["spec_version"], "2.1");
        assert_eq!(v["indicator_types"], json!(["malicious-activity"]));
        assert!(v.get("labels").is_none());
        assert_eq!(v["pattern_type"], "stix");
        assert_eq!(v["valid_from"], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn malware_gets_its_vocabulary_and_is_family() {
        let v = to_stix21(json!({"type": "malware", "labels": ["ransomware"], "name": "x"}));
        assert_eq!(v["malware_types"], json!(["ransomware"]));
        assert_eq!(v["is_family"], true);
        let t = to_stix21(json!({"type": "attack-pattern", "labels": ["phishing"]}));
        assert_eq!(
            t["labels"],
            json!(["phishing"]),
            "generic labels stay labels"
        );
    }

    #[test]
    fn objects_with_spec_version_and_non_objects_pass_unchanged() {
        let v21 = json!({"type": "indicator", "spec_version": "2.1", "labels": ["x"]});
        assert_eq!(to_stix21(v21.clone()), v21);
        assert_eq!(to_stix21(json!(5)), json!(5));
    }

    #[test]
    fn a_2_0_object_survives_the_round_trip() {
        let original = indicator20();
        assert_eq!(to_stix20(&to_stix21(original.clone())), Ok(original));
    }
}
