//! Per-object validation of what producers POST.
//!
//! A bad object is reported as a failure in the status resource; it never rejects
//! the whole envelope.

use serde_json::{Map, Value};

use super::Micros;
use crate::stix::timestamp::{format_taxii, parse_timestamp};

/// An object that passed validation, with the facts the store indexes.
#[derive(Debug, Clone)]
pub struct ValidObject {
    /// The parsed object.
    pub value: Value,
    /// STIX id, `type--uuid`.
    pub id: String,
    /// STIX type.
    pub kind: String,
    /// `spec_version`.
    pub spec_version: String,
    /// `modified`, else `created`; `None` for objects without versions (SCOs).
    pub version: Option<Micros>,
}

/// Why an object was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ObjectError {
    /// The object's id, if it had a usable one.
    pub id: String,
    /// Its `modified`/`created`, if readable.
    pub version: String,
    /// What is wrong.
    pub message: String,
}

/// STIX domain and relationship objects: `created` and `modified` are required.
const VERSIONED_TYPES: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "extension-definition",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "language-content",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
    "relationship",
    "sighting",
];

/// Validate one object; `assumed_spec_version` is used when the object has no
/// `spec_version` (STIX 2.0 objects never carry one), otherwise it is required.
pub fn validate_object(
    value: Value,
    assumed_spec_version: Option<&str>,
) -> Result<ValidObject, ObjectError> {
    let Some(map) = value.as_object() else {
        return Err(fail("", "", "not a JSON object".into()));
    };
    let raw_id = map.get("id").and_then(Value::as_str).unwrap_or("");
    let version_text = map
        .get("modified")
        .or_else(|| map.get("created"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object_type(map, raw_id, version_text)?;
    let id = object_id(map, &kind, version_text)?;
    let spec_version = spec_version(map, assumed_spec_version, &id, version_text)?;
    let version = object_version(map, &kind, &id, version_text)?;
    Ok(ValidObject {
        value,
        id,
        kind,
        spec_version,
        version,
    })
}

/// The error of an object with this id and version text.
fn fail(id: &str, version: &str, message: String) -> ObjectError {
    ObjectError {
        id: id.to_string(),
        version: version.to_string(),
        message,
    }
}

/// The object's `type`.
fn object_type(
    map: &Map<String, Value>,
    raw_id: &str,
    version: &str,
) -> Result<String, ObjectError> {
    match map.get("type") {
        Some(Value::String(t)) if is_stix_type(t) => Ok(t.clone()),
        Some(Value::String(t)) => Err(fail(raw_id, version, format!("invalid type {t:?}"))),
        Some(_) => Err(fail(raw_id, version, "`type` must be a string".into())),
        None => Err(fail(raw_id, version, "missing `type`".into())),
    }
}

/// The object's `id`, which must be of its type.
fn object_id(map: &Map<String, Value>, kind: &str, version: &str) -> Result<String, ObjectError> {
    match map.get("id") {
        Some(Value::String(id)) if is_stix_id_of(id, kind) => Ok(id.clone()),
        Some(Value::String(id)) => Err(fail(
            "",
            version,
            format!("invalid id {:?}: expected `{kind}--<uuid>`", truncate(id)),
        )),
        Some(_) => Err(fail("", version, "`id` must be a string".into())),
        None => Err(fail("", version, "missing `id`".into())),
    }
}

/// The object's `spec_version`, else the one assumed.
fn spec_version(
    map: &Map<String, Value>,
    assumed: Option<&str>,
    id: &str,
    version: &str,
) -> Result<String, ObjectError> {
    match map.get("spec_version") {
        Some(Value::String(v)) if v == "2.1" || v == "2.0" => Ok(v.clone()),
        Some(Value::String(v)) => Err(fail(
            id,
            version,
            format!("unsupported spec_version {:?}", truncate(v)),
        )),
        Some(_) => Err(fail(id, version, "`spec_version` must be a string".into())),
        None => match assumed {
            Some(v) => Ok(v.to_string()),
            None => Err(fail(id, version, "missing `spec_version`".into())),
        },
    }
}

/// The object's version: `modified`, else `created`, checked against what its type
/// requires.
fn object_version(
    map: &Map<String, Value>,
    kind: &str,
    id: &str,
    version: &str,
) -> Result<Option<Micros>, ObjectError> {
    let timestamp = |field: &str| -> Result<Option<Micros>, ObjectError> {
        match map.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => parse_timestamp(s).map(Some).map_err(|_| {
                fail(
                    id,
                    version,
                    format!("`{field}` is not a valid timestamp: {:?}", truncate(s)),
                )
            }),
            Some(_) => Err(fail(
                id,
                version,
                format!("`{field}` must be a timestamp string"),
            )),
        }
    };
    let created = timestamp("created")?;
    let modified = timestamp("modified")?;
    if VERSIONED_TYPES.contains(&kind) {
        if created.is_none() {
            return Err(fail(
                id,
                version,
                format!("missing `created` (required for {kind})"),
            ));
        }
        if modified.is_none() {
            return Err(fail(
                id,
                version,
                format!("missing `modified` (required for {kind})"),
            ));
        }
    }
    if kind == "marking-definition" && created.is_none() {
        return Err(fail(
            id,
            version,
            "missing `created` (required for marking-definition)".into(),
        ));
    }
    if let (Some(c), Some(m)) = (created, modified) {
        if m < c {
            return Err(fail(
                id,
                version,
                "`modified` is earlier than `created`".into(),
            ));
        }
    }
    Ok(modified.or(created))
}

impl ValidObject {
    /// The version as a TAXII timestamp (empty for unversioned objects).
    pub fn version_text(&self) -> String {
        self.version.map(format_taxii).unwrap_or_default()
    }
}

/// Whether `t` is a valid STIX type name (3–250 chars, lowercase ASCII letters, digits, single hyphens).
pub fn is_stix_type(t: &str) -> bool {
    let body = t.strip_prefix("x-").map(|_| t).unwrap_or(t);
    (3..=250).contains(&t.len())
        && body.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether `id` is `<kind>--<uuid>`.
pub fn is_stix_id_of(id: &str, kind: &str) -> bool {
    match id.split_once("--") {
        Some((t, uuid)) => t == kind && is_uuid(uuid),
        None => false,
    }
}

/// Whether `id` is a syntactically valid STIX identifier of any type.
pub fn is_stix_id(id: &str) -> bool {
    match id.split_once("--") {
        Some((t, uuid)) => is_stix_type(t) && is_uuid(uuid),
        None => false,
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok() && !s.bytes().any(|b| b.is_ascii_uppercase())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z"
        })
    }

    #[test]
    fn a_valid_indicator_passes_with_modified_as_version() {
        let v = validate_object(indicator(), None).expect("valid");
        assert_eq!(v.kind, "indicator");
        assert_eq!(v.version_text(), "2024-02-01T00:00:00.000000Z");
    }

    #[test]
    fn each_missing_or_bad_property_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("type", Value::Null, "missing `type`"),
            ("type", json!("Indicator"), "invalid type"),
            ("id", Value::Null, "missing `id`"),
            (
                "id",
                json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
                "invalid id",
            ),
            ("id", json!("indicator--../../etc/passwd"), "invalid id"),
            ("spec_version", Value::Null, "missing `spec_version`"),
            ("spec_version", json!("3.0"), "unsupported spec_version"),
            ("created", Value::Null, "missing `created`"),
            ("modified", Value::Null, "missing `modified`"),
            ("modified", json!("yesterday"), "not a valid timestamp"),
            (
                "modified",
                json!("2023-01-01T00:00:00Z"),
                "earlier than `created`",
            ),
        ];
        for (field, value, expected) in cases {
            let mut obj = indicator();
            let map = obj.as_object_mut().expect("object");
            if value.is_null() {
                map.remove(field);
            } else {
                map.insert(field.to_string(), value);
            }
            let err = validate_object(obj, None).expect_err(field);
            assert!(err.message.contains(expected), "{field}: {}", err.message);
        }
    }

    #[test]
    fn sco_needs_no_timestamps_and_2_0_objects_get_the_assumed_spec_version() {
        let sco = json!({"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"});
        let v = validate_object(sco, Some("2.0")).expect("valid");
        assert_eq!(v.spec_version, "2.0");
        assert_eq!(v.version, None);
    }

    #[test]
    fn non_objects_are_rejected() {
        assert!(validate_object(json!([1, 2]), None).is_err());
        assert!(validate_object(json!("x"), None).is_err());
    }

    #[test]
    fn stix_type_names() {
        assert!(is_stix_type("indicator"));
        assert!(is_stix_type("x-acme-widget"));
        assert!(!is_stix_type("ab"));
        assert!(!is_stix_type("Indicator"));
        assert!(!is_stix_type("bad--type"));
        assert!(!is_stix_type("-bad"));
    }
}
