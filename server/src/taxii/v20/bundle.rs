//! STIX 2.0 bundles: writing pages of converted objects, and reading posted bundles
//! into 2.1 objects to store.

use bytes::Bytes;
use serde_json::Value;

use crate::stix::convert::to_stix21;
use crate::store::{validate_object, AddObjects, NewObject};
use crate::taxii::envelope::{failure, posted_objects, read_object, too_large};

/// A STIX 2.0 bundle of objects already written as JSON (`objects`, each from
/// [`object_json`]), as chunks to send in order; a bundle without `objects` when there
/// are none (STIX 2.0 forbids an empty list).
pub fn chunks(objects: Vec<Bytes>) -> Vec<Bytes> {
    let mut head = Vec::with_capacity(96);
    head.extend_from_slice(br#"{"type":"bundle","id":"bundle--"#);
    head.extend_from_slice(uuid::Uuid::new_v4().hyphenated().to_string().as_bytes());
    head.extend_from_slice(br#"","spec_version":"2.0""#);
    if objects.is_empty() {
        head.push(b'}');
        return vec![Bytes::from(head)];
    }
    head.extend_from_slice(br#","objects":["#);
    let mut out = Vec::with_capacity(objects.len() * 2 + 1);
    out.push(Bytes::from(head));
    for (i, object) in objects.into_iter().enumerate() {
        if i > 0 {
            out.push(Bytes::from_static(b","));
        }
        out.push(object);
    }
    out.push(Bytes::from_static(b"]}"));
    out
}

/// One object as JSON, `type`, `spec_version` and `id` first.
pub fn object_json(object: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_object(&mut out, object);
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

/// A posted STIX 2.0 bundle as an add-objects request: each object read from its own
/// slice of the body (within `max_object_bytes`, no repeated key), converted to STIX
/// 2.1 (the converted JSON is what gets stored, and must be within the limit too) and
/// validated, one by one.
pub fn parse(body: &[u8], max_object_bytes: usize) -> Result<AddObjects, String> {
    let raws = posted_objects(body, "a STIX bundle")?;
    let mut out = AddObjects::default();
    for raw in raws {
        let value = match read_object(raw.get(), max_object_bytes) {
            Ok(v) => v,
            Err(detail) => {
                out.failures.push(detail);
                continue;
            }
        };
        let converted = to_stix21(value);
        let json = object_json(&converted);
        let json = match String::from_utf8(json) {
            Ok(j) => j,
            Err(e) => {
                out.failures.push(failure(
                    String::new(),
                    String::new(),
                    format!("unreadable object: {e}"),
                ));
                continue;
            }
        };
        if json.len() > max_object_bytes {
            out.failures.push(too_large(
                &json,
                json.len(),
                max_object_bytes,
                " once converted to STIX 2.1",
            ));
            continue;
        }
        match validate_object(converted, None) {
            Ok(object) => out.objects.push(NewObject { object, raw: json }),
            Err(e) => out.failures.push(failure(e.id, e.version, e.message)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(objects: &[Value]) -> Vec<u8> {
        chunks(
            objects
                .iter()
                .map(|o| Bytes::from(object_json(o)))
                .collect(),
        )
        .concat()
    }

    #[test]
    fn bundles_are_valid_json_with_or_without_objects() {
        let empty: Value = serde_json::from_slice(&write(&[])).expect("json");
        assert_eq!(empty["type"], "bundle");
        assert_eq!(empty["spec_version"], "2.0");
        assert!(empty.get("objects").is_none());
        let id = empty["id"].as_str().expect("id");
        assert!(crate::config::is_uuid_v4(id.trim_start_matches("bundle--")));

        let objects = [json!({"a": 1}), json!({"b": "\"x\""})];
        let bytes = write(&objects);
        let full: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(full["objects"], json!(objects));
        let ordered = write(&[json!({"modified": "m", "id": "x--1", "type": "x"})]);
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
        let parsed = parse(body.to_string().as_bytes(), usize::MAX).expect("bundle");
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
        assert!(parse(b"[1]", usize::MAX).is_err());
        assert!(parse(b"\xff", usize::MAX).is_err());
    }
}
