//! Envelopes: parsing what producers POST, and writing object pages without
//! re-serialising stored objects.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::store::{validate_object, AddObjects, Entry, NewObject, StatusDetail};

#[derive(Deserialize)]
struct IncomingEnvelope<'a> {
    #[serde(borrow, default)]
    objects: Option<Vec<&'a RawValue>>,
}

/// Split a posted envelope (or STIX bundle: both carry `objects`) into validated
/// objects and per-object failures. Only a body that is not a JSON object with an
/// `objects` array (or none) is an error for the whole request.
pub fn parse_envelope(
    body: &[u8],
    assumed_spec_version: Option<&str>,
) -> Result<AddObjects, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let envelope: IncomingEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        format!("the body is not a TAXII envelope (a JSON object with an `objects` array): {e}")
    })?;
    let mut out = AddObjects::default();
    for raw in envelope.objects.unwrap_or_default() {
        let value = match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                out.failures.push(StatusDetail {
                    id: String::new(),
                    version: String::new(),
                    message: Some(format!("unreadable object: {e}")),
                });
                continue;
            }
        };
        match validate_object(value, assumed_spec_version) {
            Ok(object) => out.objects.push(NewObject {
                object,
                raw: raw.get().to_string(),
            }),
            Err(e) => out.failures.push(StatusDetail {
                id: e.id,
                version: e.version,
                message: Some(e.message),
            }),
        }
    }
    Ok(out)
}

/// Write a TAXII 2.1 envelope around stored objects' raw JSON.
pub fn write_envelope(entries: &[Entry], more: bool, next: Option<&str>) -> Vec<u8> {
    if entries.is_empty() {
        return br#"{"more":false}"#.to_vec();
    }
    let size: usize = entries.iter().map(|e| e.raw.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 128);
    out.extend_from_slice(if more {
        br#"{"more":true"#
    } else {
        br#"{"more":false"#
    });
    if let Some(next) = next {
        out.extend_from_slice(br#","next":"#);
        out.extend_from_slice(serde_json::to_string(next).unwrap_or_default().as_bytes());
    }
    out.extend_from_slice(br#","objects":["#);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e.raw.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}"#;

    #[test]
    fn raw_bytes_are_kept_exactly() {
        let body = format!(r#"{{ "objects": [ {GOOD} ,  {{"type": "indicator"}} ] }}"#);
        let parsed = parse_envelope(body.as_bytes(), None).expect("envelope");
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.objects[0].raw, GOOD);
        assert_eq!(parsed.failures.len(), 1);
        assert_eq!(parsed.failures[0].message.as_deref(), Some("missing `id`"));
    }

    #[test]
    fn envelope_level_errors() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"objects\": 5}",
            b"\xff\xfe",
            b"{\"objects\": [1,",
        ] {
            assert!(parse_envelope(body, None).is_err(), "{body:?}");
        }
        assert!(parse_envelope(b"{}", None)
            .expect("empty")
            .objects
            .is_empty());
    }

    #[test]
    fn pages_are_valid_json_and_empty_pages_have_no_list() {
        let e = Entry {
            date_added: 1,
            id: "x".into(),
            version: 1,
            spec_version: "2.1".into(),
            raw: GOOD.into(),
        };
        let body = write_envelope(&[e.clone(), e], true, Some("abc\"d"));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["objects"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["next"], "abc\"d");
        assert_eq!(v["more"], true);
        assert_eq!(
            write_envelope(&[], false, None),
            br#"{"more":false}"#.to_vec()
        );
    }
}
