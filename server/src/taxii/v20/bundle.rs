//! STIX 2.0 bundles: writing pages of converted objects, and reading posted bundles
//! into 2.1 objects to store.

use serde::Deserialize;
use serde_json::Value;

use crate::stix::convert::to_stix21;
use crate::store::AddObjects;
use crate::taxii::envelope::parse_envelope;

/// A STIX 2.0 bundle of `objects` (a bundle without `objects` when there are none:
/// STIX 2.0 forbids an empty list).
pub fn write<'a>(objects: impl Iterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(br#"{"type":"bundle","id":"bundle--"#);
    out.extend_from_slice(uuid::Uuid::new_v4().hyphenated().to_string().as_bytes());
    out.extend_from_slice(br#"","spec_version":"2.0""#);
    let mut any = false;
    for object in objects {
        out.extend_from_slice(if any { b"," } else { br#","objects":["# });
        any = true;
        write_object(&mut out, object);
    }
    out.extend_from_slice(if any { b"]}" } else { b"}" });
    out
}

/// Properties written first, as STIX producers order them (a JSON map would sort them).
const LEADING: [&str; 3] = ["type", "spec_version", "id"];

/// Write one object as JSON with `type`, `spec_version` and `id` first.
fn write_object(out: &mut Vec<u8>, object: &Value) {
    let Value::Object(map) = object else {
        // Serialising a `Value` into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, object);
        return;
    };
    let leading = LEADING.into_iter().filter(|k| map.contains_key(*k));
    let rest = map
        .keys()
        .map(String::as_str)
        .filter(|k| !LEADING.contains(k));
    out.push(b'{');
    let mut first = true;
    for key in leading.chain(rest) {
        let Some(value) = map.get(key) else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.push(b'}');
}

#[derive(Deserialize)]
struct PostedBundle {
    #[serde(default)]
    objects: Option<Vec<Value>>,
}

/// A posted STIX 2.0 bundle as an add-objects request: every object converted to
/// STIX 2.1 (the converted JSON is what gets stored) and validated one by one.
pub fn parse(body: &[u8]) -> Result<AddObjects, String> {
    let bundle: PostedBundle = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not a STIX bundle (a JSON object with an `objects` array): {e}")
    })?;
    let mut envelope = Vec::with_capacity(body.len() + body.len() / 8);
    envelope.extend_from_slice(br#"{"objects":["#);
    for (i, object) in bundle.objects.unwrap_or_default().into_iter().enumerate() {
        if i > 0 {
            envelope.push(b',');
        }
        write_object(&mut envelope, &to_stix21(object));
    }
    envelope.extend_from_slice(b"]}");
    parse_envelope(&envelope, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundles_are_valid_json_with_or_without_objects() {
        let empty: Value = serde_json::from_slice(&write([].iter())).expect("json");
        assert_eq!(empty["type"], "bundle");
        assert_eq!(empty["spec_version"], "2.0");
        assert!(empty.get("objects").is_none());
        let id = empty["id"].as_str().expect("id");
        assert!(crate::config::is_uuid_v4(id.trim_start_matches("bundle--")));

        let objects = [json!({"a": 1}), json!({"b": "\"x\""})];
        let bytes = write(objects.iter());
        let full: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(full["objects"], json!(objects));
        let ordered = write([json!({"modified": "m", "id": "x--1", "type": "x"})].iter());
        assert!(String::from_utf8_lossy(&ordered)
            .contains(r#"[{"type":"x","id":"x--1","modified":"m"}]"#));
    }

    #[test]
    fn posted_objects_are_stored_as_2_1_and_bad_ones_reported() {
        let body = json!({"type": "bundle", "id": "bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "spec_version": "2.0", "objects": [
            {"type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
             "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
             "labels": ["malicious-activity"], "pattern": "[ipv4-addr:value = '198.51.100.1']",
             "valid_from": "2024-01-01T00:00:00Z"},
            {"type": "indicator"}
        ]});
        let parsed = parse(body.to_string().as_bytes()).expect("bundle");
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.failures.len(), 1);
        let raw = &parsed.objects[0].raw;
        assert!(
            raw.starts_with(r#"{"type":"indicator","spec_version":"2.1","id":"#),
            "{raw}"
        );
        let stored: Value = serde_json::from_str(raw).expect("raw");
        assert_eq!(stored["spec_version"], "2.1");
        assert_eq!(stored["indicator_types"], json!(["malicious-activity"]));
        assert_eq!(parsed.objects[0].object.spec_version, "2.1");
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"\xff").is_err());
    }
}
